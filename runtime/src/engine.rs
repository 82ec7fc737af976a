//! Turning a bundle's NNEF graph into a runnable tract plan, and running it.

use crate::error::{Error, Result};
use tract_nnef::prelude::*;

/// An optimized, runnable graph with its reusable execution state.
#[derive(Debug)]
pub struct Engine {
    state: TypedSimpleState,
}

impl Engine {
    /// Parses an NNEF tar (as stored in a bundle), optimizes it for this CPU and prepares a plan.
    pub fn from_nnef_tar(graph: &[u8]) -> Result<Engine> {
        let model = crate::nnef_ext::nnef()
            .model_for_read(&mut std::io::Cursor::new(graph))
            .map_err(|e| Error::Inference(format!("cannot load graph: {e:#}")))?;
        Engine::from_typed(model)
    }

    /// Optimizes an in-memory decluttered model and prepares a plan (used by the exporter to
    /// run the graph it just built, exactly as the runtime will).
    pub fn from_typed(model: TypedModel) -> Result<Engine> {
        let plan = model.into_optimized().map_err(Error::inference)?;
        let runnable = plan.into_runnable().map_err(Error::inference)?;
        let state = runnable.spawn().map_err(Error::inference)?;
        Ok(Engine { state })
    }

    /// Runs the graph on one input tensor and returns its first output flattened to f32.
    pub fn run_f32(&mut self, input: Tensor) -> Result<Vec<f32>> {
        let outputs = self
            .state
            .run(tvec!(input.into_tvalue()))
            .map_err(Error::inference)?;
        let output = outputs
            .first()
            .ok_or_else(|| Error::Inference("graph has no output".into()))?;
        let view = output
            .to_plain_array_view::<f32>()
            .map_err(Error::inference)?;
        Ok(view.iter().copied().collect())
    }

    /// The optimized model, for inspection.
    pub fn model(&self) -> &TypedModel {
        self.state.model()
    }
}
