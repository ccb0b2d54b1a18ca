//! Canvas apps: whether Salesforce may start sessions with a signed request, and where the
//! framed browser lands afterwards.

use super::reader::Reader;
use crate::domain::ReturnTo;

#[derive(Debug, Clone)]
pub struct CanvasConfig {
    /// `CANVAS_ENABLED`: `POST /oauth2/canvas` accepts signed requests. Off by default: it
    /// starts sessions without a login click, so an operator turns it on deliberately.
    pub enabled: bool,
    /// `CANVAS_LANDING`: where the framed browser goes once its session starts.
    pub landing: ReturnTo,
}

/// `CANVAS_ENABLED`, `CANVAS_LANDING`.
pub(super) fn parse(r: &mut Reader<'_>) -> CanvasConfig {
    let enabled = r.flag("CANVAS_ENABLED");
    let raw = r.get("CANVAS_LANDING").unwrap_or_else(|| "/".into());
    let landing = ReturnTo::parse(raw.trim()).unwrap_or_else(|| {
        r.problem(
            "CANVAS_LANDING",
            "must be a path on this origin, e.g. / or /app",
        );
        ReturnTo::root()
    });
    CanvasConfig { enabled, landing }
}
