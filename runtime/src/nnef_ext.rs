//! The NNEF dialect of kinglet bundles: tract's core operators plus the few kinglet registers
//! itself, because tract can run them but has no NNEF serializer for them.
//!
//! Exporter and runtime both build their NNEF framework here, so a graph written by one is
//! always readable by the other.

use tract_nnef::internal::*;
use tract_nnef::tract_core::ops::nn::GeluExact;

/// Registry id of kinglet's own NNEF operators.
pub const REGISTRY_ID: &str = "kinglet";

/// The NNEF framework used to write and read every bundle graph.
pub fn nnef() -> tract_nnef::framework::Nnef {
    tract_nnef::nnef().with_registry(registry())
}

fn registry() -> Registry {
    let mut registry = Registry::new(REGISTRY_ID)
        .with_doc("kinglet extensions: operators tract runs but does not serialize");
    // Exact (erf) GELU, as in BERT's `hidden_act = "gelu"`. tract fuses the erf expansion into
    // one op when decluttering, and that op has no serializer of its own.
    registry.register_unit_element_wise("kinglet_gelu_exact", &GeluExact {});
    crate::ops::quantize_rows::register(&mut registry);
    crate::ops::linear_i8::register(&mut registry);
    crate::ops::lstm::register(&mut registry);
    crate::ops::gru::register(&mut registry);
    registry
}
