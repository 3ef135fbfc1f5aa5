//! Issue #7's checks through the running service: forged tokens, and secrets in logs.

use super::*;

#[path = "attacks.rs"]
mod attacks;
#[path = "logs.rs"]
mod logs;
