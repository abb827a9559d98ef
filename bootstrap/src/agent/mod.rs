//! The long-running agent's pieces: the shared key that authenticates the local Envoy, and the loopback
//! HTTP server that hands tokens out.

pub mod key;
pub mod server;

pub use key::{AgentKey, KeyOrigin, AGENT_KEY_HEADER};
pub use server::{router, AgentState};
