//! Which role a filter instance plays, chosen by its Envoy `root_id`.
//!
//! One `.wasm` serves both sides: `root_id: entragate_outbound` makes the
//! instance the caller-side outbound role (attach tokens from the local agent);
//! any other root id (the callee template uses `entragate`) keeps the
//! callee-side validation role, so existing configurations are unchanged.
//! The root id is read from the `plugin_root_id` property at the first
//! `on_configure`, when the host is sure to have the plugin at hand; a root
//! context's root id never changes afterwards. Envoy creates one root context
//! per root id in a VM, so both roles can even share one VM.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

use crate::inbound::http::refuse_unavailable;
use crate::inbound::root::AuthRoot;
use crate::outbound::root::OutboundRoot;

/// `root_id` selecting the outbound role.
pub const OUTBOUND_ROOT_ID: &str = "entragate_outbound";

/// The root context Envoy sees: delegates to the role's own root context.
pub struct RoleRoot {
    context_id: u32,
    role: Option<Box<dyn RootContext>>,
}

impl RoleRoot {
    pub fn new(context_id: u32) -> RoleRoot {
        RoleRoot {
            context_id,
            role: None,
        }
    }

    fn plugin_root_id() -> Option<String> {
        hostcalls::get_property(vec!["plugin_root_id"])
            .ok()
            .flatten()
            .and_then(|bytes| String::from_utf8(bytes).ok())
    }

    fn role(&mut self) -> &mut Box<dyn RootContext> {
        let context_id = self.context_id;
        self.role.get_or_insert_with(|| {
            if Self::plugin_root_id().as_deref() == Some(OUTBOUND_ROOT_ID) {
                Box::new(OutboundRoot::new(context_id))
            } else {
                Box::new(AuthRoot::new(context_id))
            }
        })
    }
}

impl Context for RoleRoot {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        num_trailers: usize,
    ) {
        if let Some(role) = self.role.as_mut() {
            role.on_http_call_response(token_id, num_headers, body_size, num_trailers);
        }
    }
}

impl RootContext for RoleRoot {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        true
    }

    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        self.role().on_configure(plugin_configuration_size)
    }

    fn on_tick(&mut self) {
        if let Some(role) = self.role.as_mut() {
            role.on_tick();
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        match &self.role {
            Some(role) => role.create_http_context(context_id),
            None => Some(Box::new(Unconfigured)),
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// A request before any configuration was accepted (Envoy does not route
/// traffic to an unconfigured filter; this only keeps the answer fail-closed).
struct Unconfigured;

impl Context for Unconfigured {}

impl HttpContext for Unconfigured {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        refuse_unavailable("filter not configured")
    }
}
