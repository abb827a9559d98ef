//! Fixed, synthetic identifiers the local IdP starts with. None belongs to a
//! real tenant or application; they only have Entra's formats.

/// The IdP's default tenant (`tid`).
pub const TENANT_ID: &str = "3f6c1a2b-8d4e-4f7a-9b0c-5e2d1f8a7c6b";

/// The protected API's application (client) ID: the `aud` of v2 tokens.
pub const API_APP_ID: &str = "6e74172b-be56-4843-9ff4-e66a39bb12e3";
/// The protected API's Application ID URI: the `aud` of v1 tokens, and what
/// clients put in `scope=<uri>/.default`.
pub const API_APP_ID_URI: &str = "api://entragate-test-api";

/// The daemon client registered with the token endpoint.
pub const CLIENT_ID: &str = "c1d8f1a2-3b4c-4d5e-8f90-a1b2c3d4e5f6";
/// Its client secret (test-only value; Entra secrets look like this).
pub const CLIENT_SECRET: &str = "tst8Q~local-idp-secret-not-real-0000000000";
/// Object ID of the client's service principal: `oid` and `sub` of its app tokens.
pub const CLIENT_SP_OBJECT_ID: &str = "a7d3b1e2-0f4c-4b8a-9e21-5c6d7e8f9a0b";
/// App role the client is granted on the API by default.
pub const CLIENT_ROLE: &str = "Fraud.Scan";

/// Public client that user tokens are issued to (`azp` of user tokens).
pub const USER_CLIENT_ID: &str = "0f2c3b4a-5d6e-4f70-8a9b-c0d1e2f3a4b5";
/// The default user's object ID.
pub const USER_OBJECT_ID: &str = "d2e3f4a5-b6c7-4d8e-9f00-112233445566";
/// The default user's delegated scopes (`scp`, space-separated as Entra sends it).
pub const USER_SCOPES: &str = "Fraud.Read Fraud.Scan";

/// Where Entra's v2 issuers live unless a test points the issuer elsewhere.
pub const ENTRA_AUTHORITY: &str = "https://login.microsoftonline.com";
/// Host of v1 issuers (`https://sts.windows.net/{tid}/`).
pub const ENTRA_V1_AUTHORITY: &str = "https://sts.windows.net";
