//! MCP (Model Context Protocol) core: host-free pieces the pipeline calls for an MCP route.
//! Nothing here knows Envoy; every function takes bytes or parsed values and never panics.
//!
//! Which specification revision each rule follows (modelcontextprotocol.io/specification):
//! - `jsonrpc`: messages per 2025-11-25 `basic/index` (request ids are strings or integers,
//!   never null; params are objects); batches per JSON-RPC 2.0 and MCP 2025-03-26 (2025-06-18
//!   removed them; we parse them so a batch is authorized call by call, never forwarded
//!   unread). HTTP statuses per 2025-11-25 `basic/transports` (Streamable HTTP), except
//!   `Method not found` as 404 and header mismatch as 400 / -32020, which are 2026-07-28.
//! - `grants`: our own policy model (the specification leaves authorization of individual
//!   tools to the server); targets are `params.name` / `params.uri` per 2025-11-25
//!   `server/tools`, `server/resources`, `server/prompts`, `server/utilities/completion`.
//! - `lists`: result shapes of `tools/list`, `resources/list`, `resources/templates/list`,
//!   `prompts/list` and cursors per 2025-11-25 (`server/*`, `server/utilities/pagination`).
//! - `headers`: `Mcp-Method` / `Mcp-Name` and the Base64 sentinel per 2026-07-28
//!   `basic/transports/streamable-http` ("Request Metadata", "Server Validation").
//! - `metadata`: RFC 9728 protected-resource metadata and RFC 6750 challenges, as 2025-11-25
//!   `basic/authorization` requires of an MCP server.
//! - `audit`: ours (a digest of the arguments, never the arguments).

pub mod audit;
pub mod grants;
pub mod headers;
pub mod jsonrpc;
pub mod lists;
pub mod metadata;
