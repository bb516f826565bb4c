//! runc's command line is parsed by Go's flag package, where a long flag may be written with
//! one dash: go-runc's restore passes `-no-subreaper`, which containerd's runc shim sends to
//! every runtime it drives. clap would read `-no-subreaper` as a cluster of short flags, so
//! such an argument is rewritten to `--no-subreaper` when its name is a long flag of the
//! command being parsed (or a global one). As with Go's parser, the flags end at the first
//! positional argument that is not a command name, or at `--`: what follows (exec's command
//! line) is never touched.
use std::ffi::OsString;

use clap::{Arg, Command};

pub fn go_style_long_flags(root: &Command, args: Vec<OsString>) -> Vec<OsString> {
    // The common case, no argument that could be one: nothing to build or walk.
    let candidate = |a: &OsString| {
        a.to_str()
            .is_some_and(|s| s.len() > 2 && s.starts_with('-') && !s.starts_with("--"))
    };
    if !args.iter().skip(1).any(candidate) {
        return args;
    }
    let mut out = Vec::with_capacity(args.len());
    let mut args = args.into_iter();
    out.extend(args.next());
    // Subcommands are deferred (cli::Command): the invoked one is built here to see its flags.
    let mut built: Option<Command> = None;
    let mut scope = root;
    let mut value_next = false;
    let mut flags_over = false;
    for a in args {
        let Some(s) = a.to_str().filter(|_| !flags_over && !value_next) else {
            value_next = false;
            out.push(a);
            continue;
        };
        if s == "--" {
            flags_over = true;
        } else if let Some(long) = s.strip_prefix("--") {
            value_next = !long.contains('=') && find(root, scope, long).is_some_and(takes_value);
        } else if let Some(short) = s.strip_prefix('-').filter(|r| !r.is_empty()) {
            let name = short.split('=').next().unwrap_or(short);
            if name.len() > 1 {
                if let Some(arg) = find(root, scope, name) {
                    value_next = !short.contains('=') && takes_value(arg);
                    out.push(format!("-{s}").into());
                    continue;
                }
            } else {
                value_next = find_short(root, scope, name).is_some_and(takes_value);
            }
        } else if let Some(sub) = scope.find_subcommand(s) {
            let mut sub = sub.clone();
            sub.build();
            scope = built.insert(sub);
        } else {
            flags_over = true;
        }
        out.push(a);
    }
    out
}

fn takes_value(a: &Arg) -> bool {
    a.get_action().takes_values()
}

/// The long flag `name` (before any `=value`) of `scope`, or a global one of `root`.
fn find<'a>(root: &'a Command, scope: &'a Command, name: &str) -> Option<&'a Arg> {
    let name = name.split('=').next().unwrap_or(name);
    let is = |a: &&Arg| {
        a.get_long() == Some(name) || a.get_all_aliases().is_some_and(|al| al.contains(&name))
    };
    scope
        .get_arguments()
        .find(is)
        .or_else(|| root.get_arguments().filter(|a| a.is_global_set()).find(is))
}

fn find_short<'a>(root: &'a Command, scope: &'a Command, name: &str) -> Option<&'a Arg> {
    let c = name.chars().next()?;
    scope
        .get_arguments()
        .chain(root.get_arguments())
        .find(|a| a.get_short() == Some(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn rewrite(line: &str) -> String {
        let args = line.split(' ').map(OsString::from).collect();
        go_style_long_flags(&crate::cli::Cli::command(), args)
            .iter()
            .map(|a| a.to_str().unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn go_runc_restore_line() {
        assert_eq!(
            rewrite("berth -root /r --log /l restore --image-path /i -detach --pid-file /p -no-subreaper --bundle /b k1"),
            "berth --root /r --log /l restore --image-path /i --detach --pid-file /p --no-subreaper --bundle /b k1"
        );
    }

    #[test]
    fn values_positionals_and_shorts_are_left_alone() {
        // A value that looks like a flag, short flags, `=` forms.
        assert_eq!(
            rewrite("berth restore --pid-file -detach -d -b /b -work-path=/w k"),
            "berth restore --pid-file -detach -d -b /b --work-path=/w k"
        );
        // exec's command line after the id, and anything after `--`.
        assert_eq!(
            rewrite("berth exec -tty k sh -detach"),
            "berth exec --tty k sh -detach"
        );
        assert_eq!(rewrite("berth exec -- -tty"), "berth exec -- -tty");
        // Not a flag of this command: clap reports it as it is.
        assert_eq!(rewrite("berth state -bogus k"), "berth state -bogus k");
    }
}
