//! SSE consumers (tool-call guard, usage meter) fed in two random chunks: never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use llm_warden::authz::llm_request::Endpoint;
use llm_warden::authz::policy::ForbiddenToolCall;
use llm_warden::inspect::tool_calls::{check_json, SseToolGuard};
use llm_warden::limits::usage::UsageMeter;

fuzz_target!(|data: &[u8]| {
    let Some((&split, body)) = data.split_first() else { return };
    let cut = (split as usize * body.len()) / 256;
    let (a, b) = body.split_at(cut.min(body.len()));
    for ep in [Endpoint::ChatCompletions, Endpoint::Responses, Endpoint::Messages] {
        let mut g = SseToolGuard::new(ep, ForbiddenToolCall::Refusal);
        let _ = g.feed(a, false, &|t| t.len() % 2 == 0);
        let _ = g.feed(b, true, &|t| t.len() % 2 == 0);
        let _ = check_json(body, ep, &|_| false, ForbiddenToolCall::Refusal);
    }
    let mut m = UsageMeter::new(true);
    m.feed(a);
    m.feed(b);
    let _ = m.finish();
    let mut j = UsageMeter::new(false);
    j.feed(body);
    let _ = j.finish();
});
