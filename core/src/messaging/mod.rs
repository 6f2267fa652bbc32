//! Telling people things: chat workspaces and who each chat user is, the inbound chat
//! requests already handled, the platform-neutral chat message adapters render, the direct
//! notices to employees about their own line, and outgoing email (the durable outbox and the
//! mailers that deliver it).

pub mod chat;
pub mod chat_message;
pub mod employee_notice;
pub mod inbound;
pub mod outgoing_email;
