//! The Fraud Detector's route rules in the filter's plugin-configuration
//! format: one definition for the integration tests' callee and the soak,
//! whose expected answers both depend on exactly these rules.

use serde_json::{json, Value};

use crate::ids;

/// `/healthz` anonymous (GET); `POST /fraud/analyze` needs app role
/// `Fraud.Scan` and the test client as caller; `GET /fraud/reports/…` needs
/// scope `Fraud.Read`. Anything else is unmatched (403).
pub fn fraud_detector_rules() -> Value {
    json!([
        { "name": "health", "path": { "exact": "/healthz" }, "methods": ["GET"], "anonymous": true },
        { "name": "analyze", "path": { "exact": "/fraud/analyze" }, "methods": ["POST"],
          "app_roles": { "any_of": ["Fraud.Scan"] },
          "allowed_callers": [ids::CLIENT_ID] },
        { "name": "reports", "path": { "prefix": "/fraud/reports/" }, "methods": ["GET"],
          "scopes": { "any_of": ["Fraud.Read"] } }
    ])
}
