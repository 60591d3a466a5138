//! Packets, batches and the stages of the vswitch pipeline.
//!
//! Nothing here touches the kernel: ports live in the `ports` crate and the
//! poll loop that joins the two in `vswitch`.

#![deny(unsafe_code)]

pub mod arp_responder;
#[allow(unsafe_code)] // buffers lent by receive paths, see `packet`
pub mod batch;
pub mod checksum;
pub mod conntrack;
pub mod flat_map;
pub mod gso;
pub mod l2;
pub mod mac_table;
#[allow(unsafe_code)] // the buffer in use is reached through a pointer
pub mod packet;
pub mod parse;
pub mod router;
pub mod stage;
pub mod stp;
pub mod tunnel;
pub mod verdict;
pub mod vlan;
pub mod vxlan;
pub mod wire;

pub use batch::{Batch, Lender, BATCH_SIZE};
pub use mac_table::MacTable;
pub use packet::{Buf, Meta, Packet, PortNo, BUF_SIZE, HEADROOM, MAX_FRAME, MIN_FRAME, OWN_SIZE};
pub use verdict::{DropReason, Verdict};
