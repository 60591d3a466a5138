//! vswctl as a library: the command line's parsing, the client of the
//! control socket, the ovs-vsctl and ovs-appctl modes, help, completion
//! and the manual page. `main.rs` is the program; the library lets the
//! fuzz crate reach the ovs-vsctl translator ([`ovs_compat::plan`]).

pub mod args;
pub mod capture;
pub mod client;
pub mod generate;
pub mod help;
pub mod ovs_appctl;
pub mod ovs_compat;
