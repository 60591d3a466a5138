//! `vswctl trace BR in_port=P FIELDS... | --frame HEX`: a frame run through
//! the live pipeline without being sent, as OVS's `ofproto/trace` does.
//! Each stage of the port's chain runs in turn on the frame (a stage that
//! would change shared state, such as learning a MAC or creating a
//! connection, runs as a throwaway copy: `Stage::for_trace`), and its
//! decision is recorded. Then the outputs: the port(s) the frame leaves by,
//! each with the frame as it would leave (its tag), across patch ports
//! into the next bridge.

pub mod flow;

use crate::datapath::{PortRef, Snapshot};
use pipeline::stage::Ctx;
use pipeline::vlan::Egress;
use pipeline::{Packet, PortNo, Verdict};
use serde_json::{json, Value};

/// Bridges a trace follows across patch ports.
const MAX_BRIDGES: usize = 4;

/// One stage's decision.
#[derive(Debug, Clone)]
pub struct Step {
    pub bridge: String,
    pub stage: &'static str,
    pub verdict: String,
    /// The frame's VLAN inside the bridge after the stage.
    pub vlan: u16,
}

/// Where the frame ends up.
#[derive(Debug, Clone)]
pub struct Out {
    pub port: String,
    /// The tag it leaves with (None: untagged).
    pub tag: Option<u16>,
    pub frame: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
pub struct Trace {
    pub steps: Vec<Step>,
    pub outputs: Vec<Out>,
    /// Why the frame went nowhere, when it did.
    pub drop: Option<String>,
}

/// Traces `frame` received on port `in_port` (a port number of `snap`).
pub fn run(snap: &Snapshot, in_port: PortNo, frame: &[u8], now_ms: u64) -> Trace {
    let mut t = Trace::default();
    let mut pkt = Packet::new();
    if !pkt.fill(frame) {
        t.drop = Some("the frame is larger than a packet buffer".into());
        return t;
    }
    let mut at = in_port;
    for _ in 0..MAX_BRIDGES {
        let Some(port) = snap.port(at) else {
            t.drop = Some(format!("port {at} is not open"));
            return t;
        };
        match through(snap, port, &mut pkt, now_ms, &mut t) {
            Some(peer) => at = peer,
            None => return t,
        }
    }
    t.drop = Some("patch-loop".into());
    t
}

/// Runs `pkt` through `port`'s chain and records its outputs; returns the
/// patch peer to go on at, if it left by a patch port.
fn through(
    snap: &Snapshot,
    port: &PortRef,
    pkt: &mut Packet,
    now_ms: u64,
    t: &mut Trace,
) -> Option<PortNo> {
    let bridge = port
        .bridge
        .and_then(|b| snap.bridges.get(b))
        .map_or_else(|| port.name.clone(), |b| b.name.clone());
    pkt.meta = pipeline::packet::Meta {
        in_port: port.port_no,
        ..Default::default()
    };
    let cx = Ctx { now_ms };
    let mut v = Verdict::Continue;
    let mut port = port;
    for _ in 0..2 {
        for stage in port.ingress.stages() {
            let s = stage.for_trace().unwrap_or_else(|| stage.clone());
            s.process(&cx, std::slice::from_mut(pkt), std::slice::from_mut(&mut v));
            t.steps.push(Step {
                bridge: bridge.clone(),
                stage: s.name(),
                verdict: describe(snap, v, pkt),
                vlan: pkt.meta.vlan,
            });
            if v != Verdict::Continue {
                break;
            }
        }
        // A decapsulated frame re-enters on its tunnel port.
        match v {
            Verdict::Reenter(to) => match snap.port(to) {
                Some(p) => {
                    port = p;
                    v = Verdict::Continue;
                }
                None => break,
            },
            _ => break,
        }
    }
    let targets: Vec<PortNo> = match v {
        Verdict::Output(p) => vec![p],
        Verdict::Flood => port
            .bridge
            .and_then(|b| snap.bridges.get(b))
            .map(|b| {
                b.ports
                    .iter()
                    .copied()
                    .filter(|&p| p != port.port_no)
                    .filter(|&p| {
                        !(port.is_tunnel() && snap.port(p).is_some_and(PortRef::is_tunnel))
                    })
                    .collect()
            })
            .unwrap_or_default(),
        Verdict::Drop(r) => {
            t.drop = Some(r.name().to_string());
            return None;
        }
        Verdict::Consumed => {
            t.drop = Some("consumed by the switch (answered in place)".into());
            return None;
        }
        Verdict::Continue | Verdict::Reenter(_) => {
            t.drop = Some("no stage decided".into());
            return None;
        }
    };
    let mut patch = None;
    for p in targets {
        let Some(out) = snap.port(p) else { continue };
        let tag = match out.vlan.egress_packet(pkt) {
            Egress::No => continue,
            Egress::Untagged => None,
            Egress::Tagged(_) => Some(pkt.meta.vlan),
        };
        let mut frame = pkt.data().to_vec();
        if let Some(vid) = tag {
            let tci = pipeline::wire::vlan::tci(pkt.meta.pcp, vid).to_be_bytes();
            frame.splice(12..12, [0x81, 0x00, tci[0], tci[1]]);
        }
        if let Some(peer) = out.hooks.as_deref().and_then(|h| h.patch_peer) {
            patch.get_or_insert((peer, frame.clone()));
        }
        t.outputs.push(Out {
            port: out.name.clone(),
            tag,
            frame,
        });
    }
    if t.outputs.is_empty() {
        t.drop = Some("no port carries the frame's VLAN".into());
    }
    let (peer, frame) = patch?;
    if !pkt.fill(&frame) {
        return None;
    }
    Some(peer)
}

fn name_of(snap: &Snapshot, p: PortNo) -> String {
    snap.port(p)
        .map_or_else(|| format!("port {p}"), |r| r.name.clone())
}

fn describe(snap: &Snapshot, v: Verdict, pkt: &Packet) -> String {
    let dst_group = pkt.data().first().is_some_and(|b| b & 1 == 1);
    match v {
        Verdict::Continue => format!("continue (VLAN {})", pkt.meta.vlan),
        Verdict::Output(p) => format!(
            "output to {} (destination MAC learned there, VLAN {})",
            name_of(snap, p),
            pkt.meta.vlan
        ),
        Verdict::Flood if dst_group => {
            format!("flood (broadcast/multicast, VLAN {})", pkt.meta.vlan)
        }
        Verdict::Flood => format!("flood (destination MAC unknown in VLAN {})", pkt.meta.vlan),
        Verdict::Reenter(p) => format!("decapsulated, re-enters on {}", name_of(snap, p)),
        Verdict::Drop(r) => format!("drop: {}", r.name()),
        Verdict::Consumed => "consumed (answered by the switch)".into(),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl Trace {
    pub fn text(&self, in_port: &str) -> String {
        let mut s = format!("in_port {in_port}\n");
        for (i, st) in self.steps.iter().enumerate() {
            s += &format!("{:>2}. {} {}: {}\n", i + 1, st.bridge, st.stage, st.verdict);
        }
        for o in &self.outputs {
            let how = o
                .tag
                .map_or("untagged".to_string(), |v| format!("tagged {v}"));
            s += &format!("output {} ({how}): {}\n", o.port, hex(&o.frame));
        }
        if let Some(d) = &self.drop {
            s += &format!("drop: {d}\n");
        }
        s
    }

    pub fn json(&self, in_port: &str) -> Value {
        json!({
            "in_port": in_port,
            "stages": self.steps.iter().map(|s| json!({
                "bridge": s.bridge, "stage": s.stage, "verdict": s.verdict, "vlan": s.vlan,
            })).collect::<Vec<_>>(),
            "outputs": self.outputs.iter().map(|o| json!({
                "port": o.port, "tag": o.tag, "frame": hex(&o.frame),
            })).collect::<Vec<_>>(),
            "drop": self.drop,
        })
    }
}

/// `trace BRIDGE in_port=PORT [FIELD=VALUE...] [--frame HEX] [--format json]`.
pub fn command(
    cfg: &crate::config::Config,
    rt: &crate::runtime::Runtime,
    args: &[String],
) -> Result<crate::commands::Output, String> {
    const USAGE: &str = "usage: vswctl trace BRIDGE in_port=PORT [FIELD=VALUE...] [--frame HEX] \
                         [--format json]";
    let Some((br, rest)) = args.split_first() else {
        return Err(USAGE.into());
    };
    let b = cfg
        .bridges
        .get(br)
        .ok_or_else(|| format!("no bridge named {br}"))?;
    let (mut in_port, mut fields, mut hex_frame, mut as_json) =
        (None, flow::Fields::default(), None, false);
    let mut words = rest.iter();
    while let Some(w) = words.next() {
        match w.as_str() {
            "--frame" => hex_frame = Some(words.next().ok_or("--frame needs a value")?.clone()),
            "--format" => match words.next().map(String::as_str) {
                Some("json") => as_json = true,
                Some("text") => as_json = false,
                _ => return Err("--format takes text or json".into()),
            },
            _ => match w.strip_prefix("in_port=") {
                Some(p) => in_port = Some(p.to_string()),
                None => fields.set(w)?,
            },
        }
    }
    let in_port = in_port.ok_or_else(|| format!("give in_port=PORT ({USAGE})"))?;
    if !b.ports.contains_key(&in_port) && in_port != *br {
        return Err(format!("bridge {br} has no port named {in_port}"));
    }
    let frame = match hex_frame {
        Some(h) if fields != flow::Fields::default() => {
            return Err(format!("give fields or --frame, not both ({h:.8}...)"))
        }
        Some(h) => flow::parse_hex(&h)?,
        None => fields.frame(),
    };
    if frame.len() < 14 {
        return Err("--frame: shorter than an Ethernet header".into());
    }
    let (snap, no) = rt
        .snapshot()
        .zip(rt.port_no(&in_port))
        .ok_or_else(|| format!("port {in_port} is not open"))?;
    let t = run(&snap, no, &frame, rt.now_ms());
    let json = t.json(&in_port);
    let text = if as_json {
        format!("{json}\n")
    } else {
        t.text(&in_port)
    };
    Ok(crate::commands::Output { text, json })
}
