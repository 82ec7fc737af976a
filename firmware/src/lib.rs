//! # kinglet-firmware
//!
//! The device side of kinglet's serial protocol. `no_std` unless the `std` feature is on; it
//! depends on nothing else in the workspace, so a microcontroller can use it as is.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
