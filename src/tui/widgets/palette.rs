//! The command palette: `:` then a command, fuzzy-matched with nucleo.

use nucleo_matcher::pattern::{CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher};
use tui_input::Input;

/// A palette command: its name, argument hint and description.
pub struct Command {
    pub name: &'static str,
    pub arg: &'static str,
    pub desc: &'static str,
}

pub const COMMANDS: &[Command] = &[
    Command {
        name: "config",
        arg: "",
        desc: "settings: lifetimes, issuer, sign-in, rate limits",
    },
    Command {
        name: "mint",
        arg: "",
        desc: "mint a token for the selected user",
    },
    Command {
        name: "verify-audit",
        arg: "",
        desc: "check the audit log's hash chain",
    },
    Command {
        name: "purge",
        arg: "",
        desc: "delete long-expired token records",
    },
    Command {
        name: "dashboard",
        arg: "",
        desc: "counts, sign-ups waiting, recent changes",
    },
    Command {
        name: "users",
        arg: "[TEXT]",
        desc: "users, optionally filtered",
    },
    Command {
        name: "roles",
        arg: "",
        desc: "roles and scopes",
    },
    Command {
        name: "stations",
        arg: "[TEXT]",
        desc: "stations, optionally filtered",
    },
    Command {
        name: "inspect",
        arg: "[TOKEN]",
        desc: "token inspector: verdict, header, claims",
    },
    Command {
        name: "apps",
        arg: "",
        desc: "developer apps and their consents",
    },
    Command {
        name: "keys",
        arg: "[TEXT]",
        desc: "API keys",
    },
    Command {
        name: "tokens",
        arg: "[TEXT]",
        desc: "token records, optionally filtered",
    },
    Command {
        name: "operators",
        arg: "",
        desc: "who may administer",
    },
    Command {
        name: "audit",
        arg: "[TEXT]",
        desc: "audit log, optionally filtered",
    },
    Command {
        name: "domain",
        arg: "NAME|all",
        desc: "filter every screen by a domain",
    },
    Command {
        name: "new-user",
        arg: "",
        desc: "create a user",
    },
    Command {
        name: "new-domain",
        arg: "",
        desc: "add a domain",
    },
    Command {
        name: "demo",
        arg: "",
        desc: "load demo data",
    },
    Command {
        name: "reload",
        arg: "",
        desc: "reload everything",
    },
    Command {
        name: "help",
        arg: "",
        desc: "key bindings of this screen",
    },
    Command {
        name: "quit",
        arg: "",
        desc: "leave the console",
    },
];

#[derive(Debug, Clone, Default)]
pub struct Palette {
    pub input: Input,
    pub sel: usize,
}

impl Palette {
    /// Commands matching the first word of the input, best first (all when empty).
    pub fn matches(&self) -> Vec<&'static Command> {
        let word = self.input.value().split_whitespace().next().unwrap_or("");
        if word.is_empty() {
            return COMMANDS.iter().collect();
        }
        if let Some(exact) = COMMANDS.iter().find(|c| c.name == word) {
            return vec![exact];
        }
        let mut matcher = Matcher::new(Config::DEFAULT);
        let pat = Pattern::parse(word, CaseMatching::Ignore, Normalization::Smart);
        let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        pat.match_list(names, &mut matcher)
            .into_iter()
            .filter_map(|(n, _)| COMMANDS.iter().find(|c| c.name == n))
            .collect()
    }

    /// The argument after the command word.
    pub fn arg(&self) -> String {
        let v = self.input.value().trim_start();
        match v.split_once(char::is_whitespace) {
            Some((_, rest)) => rest.trim().to_string(),
            None => String::new(),
        }
    }

    /// The chosen command and its argument.
    pub fn chosen(&self) -> Option<(&'static str, String)> {
        let m = self.matches();
        m.get(self.sel.min(m.len().saturating_sub(1)))
            .map(|c| (c.name, self.arg()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuzzy_picks_command_and_keeps_argument() {
        let p = Palette {
            input: Input::new("usr alice".into()),
            sel: 0,
        };
        assert_eq!(p.chosen(), Some(("users", "alice".to_string())));
        let p = Palette {
            input: Input::new("dom free.example.com".into()),
            sel: 0,
        };
        assert_eq!(p.chosen(), Some(("domain", "free.example.com".to_string())));
        let p = Palette {
            input: Input::new("zzzz".into()),
            sel: 0,
        };
        assert_eq!(p.chosen(), None);
    }
}
