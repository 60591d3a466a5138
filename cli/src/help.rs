//! The commands vswctl knows, each with its usage and help text.
//!
//! [`GROUPS`] is the one table both kinds of help are printed from:
//! `vswctl --help` (or `vswctl help`) lists every command with its summary,
//! and `vswctl COMMAND --help` (or `vswctl help COMMAND`) prints that
//! command's usage line and a paragraph made of its summary and details.
//! A command the daemon gains is added here once.

/// One command of vswctl.
#[derive(Debug, PartialEq, Eq)]
pub struct CommandHelp {
    pub name: &'static str,
    /// What follows the name on the usage line.
    pub args: &'static str,
    /// One line in the list of all commands, and the first sentence of the
    /// command's own help.
    pub summary: &'static str,
    /// The rest of the command's own help paragraph.
    pub details: &'static str,
}

/// Commands listed under one heading of `vswctl --help`.
pub struct Group {
    pub title: &'static str,
    pub commands: &'static [CommandHelp],
}

/// What the user asked help for.
#[derive(Debug, PartialEq, Eq)]
pub enum Help {
    /// Every command and the options.
    All,
    /// One command.
    Command(&'static CommandHelp),
}

/// Width of help text, in columns.
const WIDTH: usize = 79;
/// Column where summaries start in the list of all commands.
const SUMMARY_COLUMN: usize = 33;

/// What makes a bridge or port name valid (the daemon checks it, with
/// `ports::netdev::check_ifname`); a macro so that `concat!` can put it in
/// the texts below.
macro_rules! name_rule {
    () => {
        "1 to 15 bytes, not . or .., no /, : or whitespace, not starting with -"
    };
}

const fn cmd(
    name: &'static str,
    args: &'static str,
    summary: &'static str,
    details: &'static str,
) -> CommandHelp {
    CommandHelp {
        name,
        args,
        summary,
        details,
    }
}

pub const GROUPS: &[Group] = &[
    Group {
        title: "Bridge commands",
        commands: &[
            cmd(
                "add-br",
                "BRIDGE",
                "create a bridge (and its internal port BRIDGE)",
                concat!(
                    "The internal port is a TAP device named BRIDGE, so the host can address \
                     the bridge. BRIDGE must be a valid interface name (",
                    name_rule!(),
                    "). With --may-exist, succeed if the bridge already exists."
                ),
            ),
            cmd(
                "del-br",
                "BRIDGE",
                "delete a bridge and all of its ports",
                "With --if-exists, succeed if there is no such bridge.",
            ),
            cmd(
                "list-br",
                "",
                "print the names of all bridges",
                "One name a line; with --format json, a list.",
            ),
            cmd(
                "br-exists",
                "BRIDGE",
                "exit 2 if BRIDGE does not exist",
                "Exits 0 if it exists and prints nothing either way.",
            ),
        ],
    },
    Group {
        title: "Port commands",
        commands: &[
            cmd(
                "add-port",
                "BRIDGE PORT [COL=VAL]...",
                "add PORT to BRIDGE; columns: type=(afxdp|afpacket|tap|internal|vxlan), \
                 tag=VLAN, trunks=LIST, vlan_mode=MODE, options:xdp-mode=(best-effort|native|\
                 generic), options:KEY=VALUE, external_ids:KEY=VALUE",
                concat!(
                    "Without type=, PORT is an existing interface opened with AF_XDP, or AF_PACKET \
                 when AF_XDP cannot be used on it; a device that does not exist yet is kept and \
                 comes up when it appears. PORT must be a valid interface name (",
                    name_rule!(),
                    "). With --may-exist, succeed if PORT is already on BRIDGE."
                ),
            ),
            cmd(
                "del-port",
                "[BRIDGE] PORT",
                "delete PORT",
                "With BRIDGE, PORT must be on that bridge. With --if-exists, succeed if there \
                 is no such port.",
            ),
            cmd(
                "list-ports",
                "BRIDGE",
                "print the names of the ports of BRIDGE",
                "The bridge's internal port is not listed.",
            ),
            cmd(
                "port-to-br",
                "PORT",
                "print the bridge that contains PORT",
                "Fails if no bridge has a port named PORT.",
            ),
        ],
    },
    Group {
        title: "Database commands",
        commands: &[
            cmd(
                "set",
                "bridge|port|interface NAME COL[:KEY]=VALUE...",
                "change columns of a bridge, port or interface",
                "For example set bridge br0 other_config:mac-aging-time=60, or set port p1 \
                 tag=100. Changing tag, trunks or vlan_mode applies at once and flushes what the \
                 port learned.",
            ),
            cmd(
                "list",
                "bridge|port|interface [NAME]...",
                "print whole records, name first",
                "OVS's list format: one column : value line each, a blank line between records.",
            ),
            cmd(
                "find",
                "bridge|port|interface [COLUMN[:KEY]=VALUE]...",
                "print the records for which every condition holds",
                "COLUMN!=VALUE for those that differ; printed as list prints them.",
            ),
            cmd(
                "get",
                "bridge|port|interface NAME COL[:KEY]...",
                "print columns of a bridge, port or interface",
                "One value a line, in the order the columns are given.",
            ),
        ],
    },
    Group {
        title: "Container commands",
        commands: &[
            cmd(
                "attach",
                "BRIDGE CONTAINER [IP/PREFIX[@GATEWAY]][,IP6/PREFIX[@GATEWAY6]] [--ifname NAME] [--mac MAC] \
                 [--tag VLAN] [--mtu MTU] [--type tap|veth]",
                "give a container (netns name, PID, netns path or Docker name) an interface on \
                 BRIDGE",
                "A TAP device with the virtio-net header (--type tap, the default unless \
                 other_config:attach-type=veth) is made inside the container as NAME (default \
                 eth1, a valid interface name), or a veth pair (--type veth) with one end moved \
                 there, with the MAC, MTU, address and default route, and the port added to \
                 BRIDGE (access port of VLAN with --tag). 0/0 gives \
                 no address; an IPv6 address may come beside the IPv4 one, comma-separated, \
                 or alone; on a bridge in a cluster network, no address argument takes a \
                 free one of the network's subnet. All or nothing: a failure leaves nothing behind.",
            ),
            cmd(
                "detach",
                "BRIDGE CONTAINER [--ifname NAME]",
                "undo attach: port and its TAP device or veth removed",
                "Only what attach created is removed. With --if-exists, succeed if nothing is \
                 attached.",
            ),
            cmd(
                "list-attachments",
                "[BRIDGE]",
                "what is attached where",
                "Container, interface, namespace, bridge and port of each attachment, on \
                 BRIDGE or on all bridges.",
            ),
        ],
    },
    Group {
        title: "Lab tools",
        commands: &[
            cmd(
                "capture",
                "PORT[,PORT...] [-w FILE|-] [--count N] [--duration S] [--direction in|out|both] \
             [--snaplen N] [--drops]",
                "record a port's frames as pcapng",
                "Frames as they are on each port's wire (tagged on a trunk), one pcapng interface \
             per port, with direction flags and nanosecond timestamps. -w - (the default) \
             writes to standard output: vswctl capture p1 | tcpdump -nr -. --drops adds the \
             frames the pipeline dropped on those ports, the reason as a packet comment. \
             A slow reader loses frames, never the switch: the drops are counted and \
             reported at the end. Ctrl-C ends the capture and leaves a valid file.",
            ),
            cmd(
                "trace",
                "BRIDGE in_port=PORT [FIELD=VALUE...] [--frame HEX] [--format json] | \
                 trace --live BRIDGE [FIELD=VALUE...] [--count N] [--duration S]",
                "follow a frame through the pipeline",
                "Runs a frame through the live pipeline without sending it (as OVS's \
                 ofproto/trace): each stage's decision in order (VLAN classification, the MAC \
                 table lookup, the router and NAT, tunnels), then each output port with the \
                 frame as it would leave (its tag), across patch ports. Nothing is learned and \
                 no connection is created. Fields: dl_src, dl_dst, dl_vlan, dl_type, nw_src, \
                 nw_dst, nw_proto, tp_src, tp_dst; or the whole frame with --frame HEX. With \
                 --live, the next real frames the bridge receives that match are traced.",
            ),
            cmd(
                "add-mirror",
                "BRIDGE NAME [select-src=PORT,...] [select-dst=PORT,...] [select-vlan=VID,...] \
                 [select-all] output=PORT|output-vlan=VID",
                "copy selected frames to a port",
                "OVS mirror semantics: frames received on a select-src port, sent to a \
                 select-dst port, in a selected VLAN, or all, are copied once to the output \
                 port (tagged with their VLAN, as on a trunk) or flooded into output-vlan \
                 (RSPAN). The output port receives copies only and forwards nothing of its own.",
            ),
            cmd(
                "del-mirror",
                "BRIDGE NAME",
                "remove a mirror",
                "Its output port forwards again.",
            ),
            cmd(
                "list-mirrors",
                "[BRIDGE]",
                "mirrors and their counters",
                "Each mirror's selection, output and the copies it sent.",
            ),
        ],
    },
    Group {
        title: "MAC table commands",
        commands: &[
            cmd(
                "fdb/show",
                "BRIDGE",
                "learned MAC addresses",
                "Each entry's port, VLAN, age and, on a VXLAN port, the remote it came from.",
            ),
            cmd(
                "fdb/flush",
                "[BRIDGE]",
                "forget learned MAC addresses",
                "Of BRIDGE, or of every bridge.",
            ),
            cmd(
                "fdb/add",
                "BRIDGE MAC PORT [vlan=N] [remote=IP]",
                "add a static MAC entry, which never ages",
                "remote=IP sends the MAC to that remote of a VXLAN port with several. Static \
                 entries live in the running table only.",
            ),
            cmd(
                "fdb/del",
                "BRIDGE MAC [vlan=N]",
                "delete a MAC entry",
                "Fails if there is no entry for MAC in that VLAN (default 0).",
            ),
        ],
    },
    Group {
        title: "Routing and NAT (set bridge BR other_config:gateway=IP/PREFIX first)",
        commands: &[
            cmd(
                "add-uplink",
                "PORT IP/PREFIX@NEXTHOP [type=TYPE]",
                "make PORT the routed port toward the outside",
                "The switch takes IP with its own MAC on PORT, answers ARP for it and resolves \
                 NEXTHOP itself. PORT is in no bridge; one uplink serves every bridge with a \
                 gateway. Containers of those bridges leave masqueraded behind IP unless the \
                 bridge has other_config:masquerade=false.",
            ),
            cmd(
                "del-uplink",
                "PORT",
                "remove the uplink",
                "Routing between bridges with gateways keeps working; the outside is gone.",
            ),
            cmd(
                "publish",
                "BRIDGE tcp|udp HOSTPORT[-END] IP:PORT[-END] [--ip UPLINK_IP]",
                "forward connections to the uplink's HOSTPORT to a container",
                "As docker run -p: IP is a container address in BRIDGE's subnet. The container \
                 sees the client's own address. Containers reach it at the uplink's address \
                 too (hairpin).",
            ),
            cmd(
                "unpublish",
                "BRIDGE tcp|udp HOSTPORT",
                "stop publishing a port",
                "Connections already made keep working until they end.",
            ),
            cmd(
                "list-published",
                "[BRIDGE]",
                "published ports",
                "One line per range: bridge, protocol, host address and ports, container.",
            ),
            cmd(
                "conntrack/show",
                "[BRIDGE]",
                "tracked connections",
                "Protocol, seconds left, TCP state, the original and reply tuples with \
                 packets and bytes each way, and the bridge.",
            ),
            cmd(
                "conntrack/flush",
                "[BRIDGE]",
                "forget tracked connections",
                "Their next packets start new connections (TCP ones are then dropped as \
                 invalid unless they are SYNs).",
            ),
            cmd(
                "conntrack/stats",
                "",
                "connection table size, limit, and drops by reason",
                "Limits and timeouts: set open_vswitch . other_config:ct-max-entries=N, \
                 ct-tcp-established, ct-tcp-transitory, ct-udp-unreplied, ct-udp-replied, \
                 ct-icmp (seconds).",
            ),
        ],
    },
    Group {
        title: "Cluster commands (overlay networks shared through etcd)",
        commands: &[
            cmd(
                "cluster/join",
                "http://IP:PORT[,http://IP:PORT...] [--vtep-ip IP] [--host NAME] [--ttl SECONDS]",
                "join the etcd cluster whose overlay networks this host shares",
                "Stored like any setting and kept across restarts; refused, with nothing \
                 stored, when no endpoint answers. The VTEP defaults to the source address of \
                 the route toward the first endpoint, the host name to the system's, the \
                 lease TTL to 10 s: a host that stops renewing its lease is dropped by the \
                 others that long after.",
            ),
            cmd(
                "cluster/leave",
                "",
                "leave the cluster",
                "The lease is revoked, so the other hosts drop this one at once. Address \
                 reservations stay until their containers are detached.",
            ),
            cmd(
                "cluster/show",
                "",
                "etcd connection, this host's VTEP and lease, the other hosts",
                "\"disconnected\" while etcd cannot be reached: forwarding goes on with the \
                 last known state.",
            ),
            cmd(
                "network/create",
                "NAME --vni N --subnet CIDR [--gateway IP]",
                "create an overlay network, cluster-wide",
                "A name or VNI already taken, or a subnet overlapping another network's, is \
                 refused. A bridge joins it with other_config:network=NAME; containers \
                 attached there without an address get a free one of the subnet.",
            ),
            cmd(
                "network/delete",
                "NAME",
                "delete an overlay network",
                "Refused while it has members or reserved addresses.",
            ),
            cmd(
                "network/list",
                "",
                "the cluster's networks, with their member counts",
                "Read from etcd.",
            ),
        ],
    },
    Group {
        title: "Status commands",
        commands: &[
            cmd(
                "show",
                "",
                "overview of bridges, ports and their state",
                "Each port's type, VLAN settings, options and errors (a device that is missing, \
                 or AF_PACKET used instead of AF_XDP, and why).",
            ),
            cmd(
                "dump-ports",
                "BRIDGE [PORT]",
                "port counters, with drops by reason",
                "Of every port of BRIDGE (its internal port included), or of PORT.",
            ),
            cmd(
                "rstp/show",
                "[BRIDGE]",
                "RSTP: root and bridge identifiers, each port's role and state",
                "Of BRIDGE, or of every bridge with rstp_enable=true. Bridge settings: \
                 other_config:rstp-priority, rstp-hello-time, rstp-max-age, \
                 rstp-forward-delay, rstp-address; port settings: other_config:rstp-enable, \
                 rstp-port-priority, rstp-path-cost, rstp-port-admin-edge, \
                 rstp-port-auto-edge.",
            ),
            cmd(
                "tunnel/show",
                "",
                "VXLAN ports: VNI, remotes, underlay and counters",
                "Also each endpoint's drops by reason.",
            ),
            cmd(
                "pmd/stats-show",
                "",
                "poll thread statistics",
                "Per poll thread: packets, batches, idle and processing cycles, cycles per \
                 packet and idle sleeps.",
            ),
            cmd(
                "pmd/stats-clear",
                "",
                "reset poll thread statistics",
                "pmd/stats-show then counts from zero.",
            ),
            cmd(
                "pmd/rxq-show",
                "",
                "which poll thread polls which queue",
                "One line per poll thread and its queues.",
            ),
        ],
    },
    Group {
        title: "Help",
        commands: &[cmd(
            "help",
            "[COMMAND]",
            "list the commands, or describe COMMAND",
            "vswctl COMMAND --help (or -h) does the same. Neither contacts vswitchd.",
        ),
        cmd(
            "completion",
            "bash|zsh|fish|elvish|powershell",
            "print the shell completion script for vswctl",
            "scripts/install.sh installs those for bash, zsh and fish. For one shell: \
             source <(vswctl completion bash).",
        ),
        cmd(
            "man",
            "",
            "print the vswctl(8) manual page (roff)",
            "Read it with vswctl man | man -l -. scripts/install.sh installs it, and \
             vswitchd(8) from vswitchd --print-man.",
        )],
    },
];

const HEADER: &str = "\
vswctl: configure and query vswitchd
usage: vswctl [OPTIONS] COMMAND [ARG...] [-- [OPTIONS] COMMAND [ARG...]]...

Commands joined with -- are applied together or not at all.
";

const OPTIONS: &str = "
Options:
  --rundir DIR        run directory of vswitchd (default $VSWITCH_RUNDIR,
                      else /run/vswitch)
  --format text|json  output format (-f json also works)
  --may-exist         add-br/add-port: succeed if it already exists
  --if-exists         del-br/del-port: succeed if it does not exist
  --timeout N         give up after N seconds (default 30)
  -h, --help          this help; after a command, that command's help
  -V, --version       version
";

/// The command named `name`.
pub fn find(name: &str) -> Option<&'static CommandHelp> {
    GROUPS
        .iter()
        .flat_map(|g| g.commands.iter())
        .find(|c| c.name == name)
}

impl Help {
    /// The text to print.
    pub fn text(&self) -> String {
        match self {
            Help::All => all(),
            Help::Command(c) => c.text(),
        }
    }
}

impl CommandHelp {
    /// The usage line after `prefix`, wrapped to [`WIDTH`] with the
    /// continuation lines indented under the first argument; a bracketed
    /// group is never split.
    fn usage_lines(&self, prefix: &str) -> Vec<String> {
        let mut words: Vec<String> = Vec::new();
        let mut depth = 0usize;
        for w in self.args.split_whitespace() {
            match words.last_mut() {
                Some(last) if depth > 0 => {
                    last.push(' ');
                    last.push_str(w);
                }
                _ => words.push(w.to_string()),
            }
            depth = (depth + w.matches('[').count()).saturating_sub(w.matches(']').count());
        }
        let start = format!("{prefix}{}", self.name);
        let indent = start.len() + 1;
        fill(&start, words, indent, WIDTH)
    }

    /// This command's help: the usage line and one paragraph.
    pub fn text(&self) -> String {
        let mut lines = self.usage_lines("usage: vswctl [OPTIONS] ");
        lines.push(String::new());
        lines.extend(wrap(&paragraph(self), WIDTH));
        lines.iter().map(|l| format!("{l}\n")).collect()
    }
}

/// A command's help paragraph: its summary as a sentence, then its details.
pub fn paragraph(c: &CommandHelp) -> String {
    let mut paragraph = String::new();
    let mut first = c.summary.chars();
    if let Some(ch) = first.next() {
        paragraph.extend(ch.to_uppercase());
        paragraph.push_str(first.as_str());
        paragraph.push('.');
    }
    if !c.details.is_empty() {
        paragraph.push(' ');
        paragraph.push_str(c.details);
    }
    paragraph
}

/// The help that lists every command.
fn all() -> String {
    let mut lines: Vec<String> = HEADER.lines().map(String::from).collect();
    lines.push("`vswctl help COMMAND` or `vswctl COMMAND --help` describes one command.".into());
    lines.extend(wrap(
        concat!("Bridge and port names: ", name_rule!(), "."),
        WIDTH,
    ));
    for g in GROUPS {
        lines.push(String::new());
        lines.push(format!("{}:", g.title));
        for c in g.commands {
            let usage = c.usage_lines("  ");
            let mut summary = wrap(c.summary, WIDTH - SUMMARY_COLUMN).into_iter();
            match usage.as_slice() {
                [one] if one.len() < SUMMARY_COLUMN - 1 => {
                    let first = summary.next().unwrap_or_default();
                    lines.push(format!("{one:<SUMMARY_COLUMN$}{first}"));
                }
                _ => lines.extend(usage),
            }
            lines.extend(summary.map(|l| format!("{:SUMMARY_COLUMN$}{l}", "")));
        }
    }
    let mut out: String = lines.iter().map(|l| format!("{l}\n")).collect();
    out.push_str(OPTIONS);
    out
}

/// Splits `text` into lines of at most `width` columns at spaces (a word
/// longer than `width` gets a line of its own).
fn wrap(text: &str, width: usize) -> Vec<String> {
    fill("", text.split_whitespace(), 0, width)
}

/// `start` followed by `words`, separated by spaces and broken into lines
/// of at most `width` columns; lines after the first start with `indent`
/// spaces. A word that does not fit on a line of its own gets one anyway.
fn fill<S: AsRef<str>>(
    start: &str,
    words: impl IntoIterator<Item = S>,
    indent: usize,
    width: usize,
) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = start.to_string();
    let mut fresh = start.trim().is_empty();
    for w in words {
        let w = w.as_ref();
        if !fresh && line.len() + 1 + w.len() > width {
            lines.push(std::mem::replace(&mut line, " ".repeat(indent)));
            fresh = true;
        }
        if !fresh {
            line.push(' ');
        }
        line.push_str(w);
        fresh = false;
    }
    if !line.trim().is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_is_in_the_list_of_all() {
        let all = Help::All.text();
        for g in GROUPS {
            for c in g.commands {
                let listed = format!("\n  {} ", c.name);
                let bare = format!("\n  {}\n", c.name);
                assert!(
                    all.contains(&listed) || all.contains(&bare),
                    "{} missing:\n{all}",
                    c.name
                );
            }
        }
    }

    #[test]
    fn command_names_are_unique() {
        let mut names: Vec<&str> = GROUPS
            .iter()
            .flat_map(|g| g.commands.iter().map(|c| c.name))
            .collect();
        let n = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), n);
    }

    #[test]
    fn one_command_is_its_usage_and_a_paragraph() {
        let add_br = find("add-br").unwrap_or_else(|| panic!("add-br is in the table"));
        let text = Help::Command(add_br).text();
        assert!(
            text.starts_with("usage: vswctl [OPTIONS] add-br BRIDGE\n\nCreate a bridge"),
            "{text}"
        );
        let paragraph: Vec<&str> = text.lines().skip(2).collect();
        assert!(!paragraph.is_empty() && paragraph.iter().all(|l| !l.is_empty()));
        assert!(text.contains("--may-exist"), "{text}");
        assert!(!text.contains("del-br"), "only add-br's help:\n{text}");
    }

    #[test]
    fn lines_fit_the_width() {
        let mut texts = vec![Help::All.text()];
        for g in GROUPS {
            texts.extend(g.commands.iter().map(CommandHelp::text));
        }
        for t in texts {
            for l in t.lines() {
                assert!(l.len() <= WIDTH, "too long: {l:?}");
            }
        }
    }

    #[test]
    fn long_usages_put_the_summary_on_the_next_line() {
        let all = Help::All.text();
        assert!(
            all.contains("  add-port BRIDGE PORT [COL=VAL]...\n"),
            "{all}"
        );
        assert!(all.contains("  add-br BRIDGE                  create a bridge"));
    }

    #[test]
    fn wrap_breaks_at_spaces() {
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
        assert_eq!(wrap("toolongword x", 4), vec!["toolongword", "x"]);
        assert!(wrap("", 10).is_empty());
    }

    #[test]
    fn long_usages_wrap_between_bracketed_groups() {
        let attach = find("attach").unwrap_or_else(|| panic!("attach is in the table"));
        let text = attach.text();
        let usage: Vec<&str> = text.lines().take_while(|l| !l.is_empty()).collect();
        assert!(usage.len() > 1, "{text}");
        assert!(usage[0].starts_with("usage: vswctl [OPTIONS] attach BRIDGE"));
        let indent = "usage: vswctl [OPTIONS] attach ".len();
        for l in &usage[1..] {
            assert!(l.starts_with(&" ".repeat(indent)) && l.trim_start().starts_with('['));
        }
        for l in &usage {
            assert_eq!(l.matches('[').count(), l.matches(']').count(), "{l}");
        }
    }
}
