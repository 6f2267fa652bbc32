//! Lines and how they come to be: the eSIM line and its state machine, the plans it runs on,
//! the requests that ask for one, the identifiers and codes that install it (activation
//! code, ICCID, EID, QR), and the provider webhooks that settle its orders.

pub mod activation_code;
pub mod eid;
pub mod iccid;
pub mod line;
pub mod plan;
pub mod qr;
pub mod request;
pub mod webhook;
