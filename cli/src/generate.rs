//! Shell completion and the man page, generated from the command table in
//! [`crate::help`]: `vswctl completion SHELL` and `vswctl man`.
//!
//! vswctl parses its own arguments (see `main.rs`), so a `clap::Command` is
//! built here only to describe them to `clap_complete` and `clap_mangen`:
//! one subcommand per entry of [`help::GROUPS`] and the global options of
//! `vswctl --help`. A command added to the table is completed and
//! documented with no further change.

use crate::help::{self, GROUPS};
use clap::{Arg, ArgAction, Command};
use clap_complete::Shell;
use clap_mangen::roff::{bold, roman, Roff};
use std::io::Write;

/// The usage of `vswctl completion`.
pub const COMPLETION_USAGE: &str = "usage: vswctl completion bash|zsh|fish|elvish|powershell";

/// vswctl's grammar as a `clap::Command`.
fn command() -> Command {
    let global = |name: &'static str, value: Option<&'static str>, help: &'static str| {
        let a = Arg::new(name).long(name).help(help);
        match value {
            Some(v) => a.value_name(v),
            None => a.action(ArgAction::SetTrue),
        }
    };
    let mut cmd = Command::new("vswctl")
        .version(env!("CARGO_PKG_VERSION"))
        .about("configure and query vswitchd")
        .long_about(
            "vswctl configures and queries a running vswitchd through its control socket, \
             in the manner of ovs-vsctl. Commands joined with -- are applied together or \
             not at all. Run as ovs-vsctl (a symlink) it takes Open vSwitch's grammar and \
             prints its formats; run as ovs-appctl, Open vSwitch's runtime commands.",
        )
        .disable_help_subcommand(true)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .arg(global(
            "rundir",
            Some("DIR"),
            "run directory of vswitchd (default $VSWITCH_RUNDIR, else /run/vswitch)",
        ))
        .arg(
            global("format", Some("FORMAT"), "output format")
                .short('f')
                .value_parser(["text", "json"]),
        )
        .arg(global(
            "may-exist",
            None,
            "add-br/add-port: succeed if it already exists",
        ))
        .arg(global(
            "if-exists",
            None,
            "del-br/del-port: succeed if it does not exist",
        ))
        .arg(global("timeout", Some("N"), "give up after N seconds (default 30)").short('t'))
        .arg(
            global(
                "help",
                None,
                "this help; after a command, that command's help",
            )
            .short('h'),
        )
        .arg(global("version", None, "print the version").short('V'));
    for c in GROUPS.iter().flat_map(|g| g.commands) {
        let mut sub = Command::new(c.name).about(c.summary);
        if !c.args.is_empty() {
            sub = sub.arg(
                Arg::new("ARGS")
                    .value_name(c.args)
                    .num_args(0..)
                    .trailing_var_arg(true)
                    .allow_hyphen_values(true),
            );
        }
        cmd = cmd.subcommand(sub);
    }
    cmd
}

/// Prints the completion script for `shell` (bash, zsh, fish, elvish,
/// powershell) to `out`.
pub fn completion(shell: &str, out: &mut dyn Write) -> Result<(), String> {
    let shell: Shell = shell.parse().map_err(|_| {
        format!("\"{shell}\" is not a shell I can complete for ({COMPLETION_USAGE})")
    })?;
    clap_complete::generate(shell, &mut command(), "vswctl", out);
    Ok(())
}

/// Prints vswctl(8) in roff to `out`: the title, name, synopsis, description
/// and options from clap_mangen, then every command with its usage and
/// whole help, group by group.
pub fn man(out: &mut dyn Write) -> std::io::Result<()> {
    let page = clap_mangen::Man::new(command()).section("8");
    page.render_title(out)?;
    page.render_name_section(out)?;
    let mut synopsis = Roff::new();
    synopsis.control("SH", ["SYNOPSIS"]);
    synopsis.text([
        bold("vswctl"),
        roman(" [OPTIONS] COMMAND [ARG...] [-- [OPTIONS] COMMAND [ARG...]]..."),
    ]);
    synopsis.to_writer(out)?;
    page.render_description_section(out)?;
    page.render_options_section(out)?;
    let mut commands = Roff::new();
    commands.control("SH", ["COMMANDS"]);
    for g in GROUPS {
        commands.control("SS", [g.title]);
        for c in g.commands {
            commands.control("TP", []);
            commands.text([bold(c.name), roman(format!(" {}", c.args))]);
            commands.text([roman(help::paragraph(c))]);
        }
    }
    commands.control("SH", ["SEE ALSO"]);
    commands.text([roman("vswitchd(8), ovs-vsctl(8)")]);
    commands.to_writer(out)?;
    page.render_version_section(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_command_description_is_valid() {
        command().debug_assert();
    }

    #[test]
    fn bash_completes_every_command() {
        let script = text(|o| completion("bash", o).unwrap());
        for c in GROUPS.iter().flat_map(|g| g.commands) {
            assert!(script.contains(c.name), "{} is not completed", c.name);
        }
        assert!(script.contains("--rundir") && script.contains("complete -F"));
    }

    #[test]
    fn an_unknown_shell_is_refused() {
        let e = completion("tcsh", &mut Vec::new()).unwrap_err();
        assert!(e.contains("tcsh") && e.contains("bash|zsh"), "{e}");
    }

    #[test]
    fn the_man_page_has_every_command_with_its_help() {
        let page = text(|o| man(o).unwrap());
        assert!(
            page.starts_with(".ie") || page.contains(".TH vswctl 8"),
            "{page}"
        );
        for section in [".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS", ".SH COMMANDS"] {
            assert!(page.contains(section), "no {section}");
        }
        let add_port = help::find("add-port").unwrap();
        assert!(page.contains("\\fBadd\\-port\\fR") || page.contains("add\\-port"));
        let first_words: String = help::paragraph(add_port).chars().take(20).collect();
        assert!(
            page.contains(&first_words.replace('-', "\\-")),
            "{first_words}"
        );
    }
}
