//! Open vSwitch's names: tables, columns, commands and options, and how
//! ovs-vsctl matches what the user typed against them.

use super::{fail, Fail};

/// Every table of the Open vSwitch schema, for OVS's table name matching.
#[rustfmt::skip]
pub(crate) const OVS_TABLES: &[&str] = &[
    "Open_vSwitch", "Bridge", "Port", "Interface", "Flow_Table", "QoS", "Queue", "Mirror",
    "Controller", "Manager", "NetFlow", "SSL", "sFlow", "IPFIX", "Flow_Sample_Collector_Set",
    "AutoAttach", "Datapath", "CT_Zone", "CT_Timeout_Policy",
];

/// Columns of the three supported tables in the Open vSwitch 3.1 schema
/// (vswitch.ovsschema 8.3.1), for OVS's column name matching.
#[rustfmt::skip]
pub(crate) const BRIDGE_COLUMNS: &[&str] = &[
    "auto_attach", "controller", "datapath_id", "datapath_type", "datapath_version",
    "external_ids", "fail_mode", "flood_vlans", "flow_tables", "ipfix", "mcast_snooping_enable",
    "mirrors", "name", "netflow", "other_config", "ports", "protocols", "rstp_enable",
    "rstp_status", "sflow", "status", "stp_enable",
];
#[rustfmt::skip]
pub(crate) const PORT_COLUMNS: &[&str] = &[
    "bond_active_slave", "bond_downdelay", "bond_fake_iface", "bond_mode", "bond_updelay",
    "cvlans", "external_ids", "fake_bridge", "interfaces", "lacp", "mac", "name",
    "other_config", "protected", "qos", "rstp_statistics", "rstp_status", "statistics",
    "status", "tag", "trunks", "vlan_mode",
];
#[rustfmt::skip]
pub(crate) const INTERFACE_COLUMNS: &[&str] = &[
    "admin_state", "bfd", "bfd_status", "cfm_fault", "cfm_fault_status", "cfm_flap_count",
    "cfm_health", "cfm_mpid", "cfm_remote_mpids", "cfm_remote_opstate", "duplex", "error",
    "external_ids", "ifindex", "ingress_policing_burst", "ingress_policing_kpkts_burst",
    "ingress_policing_kpkts_rate", "ingress_policing_rate", "lacp_current", "link_resets",
    "link_speed", "link_state", "lldp", "mac", "mac_in_use", "mtu", "mtu_request", "name",
    "ofport", "ofport_request", "options", "other_config", "statistics", "status", "type",
];
#[rustfmt::skip]
pub(crate) const MIRROR_COLUMNS: &[&str] = &[
    "external_ids", "name", "output_port", "output_vlan", "select_all", "select_dst_port",
    "select_src_port", "select_vlan", "snaplen", "statistics",
];

/// ovs-vsctl commands vswitch does not implement: refused by name.
#[rustfmt::skip]
pub(crate) const OVS_ONLY_COMMANDS: &[&str] = &[
    "init", "emer-reset", "br-to-vlan", "br-to-parent", "br-set-external-id",
    "br-get-external-id", "add-bond", "add-bond-iface", "del-bond-iface", "list-ifaces",
    "iface-to-br", "get-controller", "del-controller", "set-controller", "get-fail-mode",
    "del-fail-mode", "set-fail-mode", "get-manager", "del-manager", "set-manager", "get-ssl",
    "del-ssl", "set-ssl", "add-zone-tp", "del-zone-tp", "list-zone-tp", "get-aa-mapping",
    "add-aa-mapping", "del-aa-mapping", "destroy", "wait-until", "comment",
];

/// ovs-vsctl options vswitch does not implement: refused by name.
#[rustfmt::skip]
pub(crate) const OVS_ONLY_OPTIONS: &[&str] = &[
    "--dry-run", "--oneline", "--pretty", "--all", "--verbose", "-v", "--log-file", "--private-key",
    "--certificate", "--ca-cert", "--bootstrap-ca-cert", "--peer-ca-cert", "--retry",
    "--detach", "--pidfile", "--monitor", "--overwrite-pidfile", "--no-chdir", "--unixctl",
];

/// (name, least and most arguments) of each supported command.
pub(crate) const COMMANDS: &[(&str, usize, usize)] = &[
    ("list-br", 0, 0),
    ("br-exists", 1, 1),
    ("add-br", 1, 3),
    ("del-br", 1, 1),
    ("list-ports", 1, 1),
    ("add-port", 2, usize::MAX),
    ("del-port", 1, 2),
    ("port-to-br", 1, 1),
    ("get", 2, usize::MAX),
    ("list", 1, usize::MAX),
    ("find", 1, usize::MAX),
    ("set", 3, usize::MAX),
    ("show", 0, 0),
    ("create", 2, usize::MAX),
    ("add", 4, usize::MAX),
    ("remove", 4, usize::MAX),
    ("clear", 3, usize::MAX),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    Bridge,
    Port,
    Interface,
    /// Port mirrors: `list`/`find`, and `get` with `--id` (see `ids`).
    Mirror,
}

impl Table {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Table::Bridge => "Bridge",
            Table::Port => "Port",
            Table::Interface => "Interface",
            Table::Mirror => "Mirror",
        }
    }

    fn all_columns(self) -> &'static [&'static str] {
        match self {
            Table::Bridge => BRIDGE_COLUMNS,
            Table::Port => PORT_COLUMNS,
            Table::Interface => INTERFACE_COLUMNS,
            Table::Mirror => MIRROR_COLUMNS,
        }
    }

    /// Columns vswitch keeps for this table.
    fn supported(self) -> &'static [&'static str] {
        match self {
            Table::Bridge => &[
                "name",
                "datapath_type",
                "other_config",
                "external_ids",
                "rstp_enable",
            ],
            Table::Port => &[
                "name",
                "tag",
                "trunks",
                "vlan_mode",
                "other_config",
                "external_ids",
            ],
            Table::Interface => &[
                "name",
                "type",
                "options",
                "other_config",
                "external_ids",
                "mtu_request",
            ],
            Table::Mirror => &[
                "name",
                "select_all",
                "select_src_port",
                "select_dst_port",
                "select_vlan",
                "output_port",
                "output_vlan",
            ],
        }
    }

    /// The table argument of vswctl's get/set.
    pub(crate) fn vswctl(self) -> &'static str {
        match self {
            Table::Bridge => "bridge",
            Table::Port => "port",
            Table::Interface => "interface",
            Table::Mirror => "mirror",
        }
    }
}

pub(crate) fn is_map(column: &str) -> bool {
    matches!(column, "external_ids" | "other_config" | "options")
}

/// OVS's name matching: exact (ignoring case, '-' as '_') wins, else a
/// unique prefix. Ok(None) when nothing matches; Err(all) when a prefix
/// matches several.
pub(crate) fn match_name<'a>(
    names: &[&'a str],
    given: &str,
) -> Result<Option<&'a str>, Vec<&'a str>> {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let g = norm(given);
    if let Some(n) = names.iter().find(|n| norm(n) == g) {
        return Ok(Some(n));
    }
    let hits: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !g.is_empty() && norm(n).starts_with(&g))
        .collect();
    match hits.len() {
        0 => Ok(None),
        1 => Ok(Some(hits[0])),
        _ => Err(hits),
    }
}

pub(crate) fn parse_table(given: &str) -> Result<Table, Fail> {
    match match_name(OVS_TABLES, given) {
        Ok(Some("Bridge")) => Ok(Table::Bridge),
        Ok(Some("Port")) => Ok(Table::Port),
        Ok(Some("Interface")) => Ok(Table::Interface),
        Ok(Some("Mirror")) => Ok(Table::Mirror),
        Ok(Some(other)) => fail(format!(
            "table {other} is not supported by vswitch (supported: Bridge, Port, Interface, Mirror)"
        )),
        Ok(None) => fail(format!("unknown table \"{given}\"")),
        Err(_) => fail(format!("multiple table names match \"{given}\"")),
    }
}

pub(crate) fn parse_column(table: Table, given: &str) -> Result<&'static str, Fail> {
    match match_name(table.all_columns(), given) {
        Ok(Some(c)) if table.supported().contains(&c) => Ok(c),
        Ok(Some(c)) => fail(format!(
            "column {c} of table {} is not supported by vswitch (supported: {})",
            table.name(),
            table.supported().join(", ")
        )),
        Ok(None) => fail(format!(
            "{} does not contain a column whose name matches \"{given}\"",
            table.name()
        )),
        Err(all) => fail(format!(
            "{} contains more than one column whose name matches \"{given}\": {}",
            table.name(),
            all.join(", ")
        )),
    }
}
