//! Authorization: the canonical request path, what an LLM request asks for (endpoint, model, tools), and the policy that decides per route, rule, model and tool.

pub mod llm_request;
pub mod policy;
#[cfg(test)]
mod policy_tests;
pub mod request_path;
pub mod tool_decls;
