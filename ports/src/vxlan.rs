//! The VXLAN underlay: see the helper's work.
