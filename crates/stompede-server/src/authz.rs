//! Authorization per destination: who may SEND to and SUBSCRIBE to which destinations.
//!
//! Rules come from the `[authorization]` config section and are checked on every SEND and
//! SUBSCRIBE (also SENDs committed from a transaction), against the destination as the client
//! wrote it (`/app/...`, `/topic/...`, `/user/...`). The first rule whose pattern and action
//! match decides; when none does, `default` does.
//!
//! ```toml
//! [authorization]
//! default = "allow"
//! [[authorization.rules]]
//! destination = "/topic/admin/**"   # Ant pattern, as topic subscriptions use
//! actions = ["send", "subscribe"]
//! allow = ["role:admin"]            # "*", "anonymous", "authenticated", "user:NAME", "role:NAME"
//! ```

use serde::{Deserialize, Serialize};
use stompede_broker::pattern;

use crate::auth::Principal;

/// The `[authorization]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthorizationConfig {
    /// What happens when no rule matches.
    pub default: Decision,
    /// Checked in order; the first whose destination and action match decides.
    pub rules: Vec<RuleConfig>,
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Let the frame through.
    #[default]
    Allow,
    /// Refuse it with an ERROR.
    Deny,
}

/// A frame authorization applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// SEND.
    Send,
    /// SUBSCRIBE.
    Subscribe,
}

impl Action {
    fn as_str(self) -> &'static str {
        match self {
            Action::Send => "SEND to",
            Action::Subscribe => "SUBSCRIBE to",
        }
    }
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Ant-style pattern of destinations (`*`, `?`, `**`).
    pub destination: String,
    /// Frames it applies to; both when empty.
    #[serde(default)]
    pub actions: Vec<Action>,
    /// Who is allowed: `"*"` (anyone), `"anonymous"`, `"authenticated"`, `"user:NAME"`,
    /// `"role:NAME"`. Everyone else is denied. Empty denies everyone.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// A refused frame: the ERROR's body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{action} {destination} is not allowed for {who}")]
pub struct Denied {
    action: &'static str,
    destination: String,
    who: String,
}

/// Compiled rules.
#[derive(Debug, Clone, Default)]
pub struct Authorizer {
    default: Decision,
    rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
struct Rule {
    pattern: String,
    actions: Vec<Action>,
    allow: Vec<Who>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Who {
    Anyone,
    Anonymous,
    Authenticated,
    User(String),
    Role(String),
}

impl Who {
    fn parse(raw: &str) -> Result<Who, String> {
        match raw {
            "*" => Ok(Who::Anyone),
            "anonymous" => Ok(Who::Anonymous),
            "authenticated" => Ok(Who::Authenticated),
            _ => match raw.split_once(':') {
                Some(("user", name)) if !name.is_empty() => Ok(Who::User(name.to_owned())),
                Some(("role", name)) if !name.is_empty() => Ok(Who::Role(name.to_owned())),
                _ => Err(format!(
                    "{raw:?}: expected \"*\", \"anonymous\", \"authenticated\", \"user:NAME\" or \
                     \"role:NAME\""
                )),
            },
        }
    }

    fn admits(&self, principal: Option<&Principal>) -> bool {
        match (self, principal) {
            (Who::Anyone, _) => true,
            (Who::Anonymous, p) => p.is_none(),
            (Who::Authenticated, p) => p.is_some(),
            (Who::User(name), Some(p)) => p.name == *name,
            (Who::Role(role), Some(p)) => p.has_role(role),
            (Who::User(_) | Who::Role(_), None) => false,
        }
    }
}

impl Authorizer {
    /// Compiles the rules of `config`.
    ///
    /// # Errors
    /// A rule whose destination does not start with `/` or whose `allow` entry is not one of
    /// the forms above, naming the rule.
    pub fn new(config: &AuthorizationConfig) -> Result<Authorizer, String> {
        let rules = config
            .rules
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                if !rule.destination.starts_with('/') {
                    return Err(format!("rule {}: destination must start with '/'", i + 1));
                }
                let allow = rule
                    .allow
                    .iter()
                    .map(|w| Who::parse(w))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("rule {}: allow {e}", i + 1))?;
                Ok(Rule {
                    pattern: rule.destination.clone(),
                    actions: rule.actions.clone(),
                    allow,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Authorizer {
            default: config.default,
            rules,
        })
    }

    /// Denies every frame: the fallback for rules that do not compile.
    pub fn deny_all() -> Authorizer {
        Authorizer {
            default: Decision::Deny,
            rules: Vec::new(),
        }
    }

    /// Whether there is nothing to check (no rule, default allow): the session skips checks.
    pub fn allows_everything(&self) -> bool {
        self.rules.is_empty() && self.default == Decision::Allow
    }

    /// Checks one frame.
    ///
    /// # Errors
    /// [`Denied`], saying what was refused to whom.
    pub fn check(
        &self,
        action: Action,
        destination: &str,
        principal: Option<&Principal>,
    ) -> Result<(), Denied> {
        let rule = self.rules.iter().find(|rule| {
            (rule.actions.is_empty() || rule.actions.contains(&action))
                && pattern::matches(&rule.pattern, destination)
        });
        let allowed = match rule {
            Some(rule) => rule.allow.iter().any(|who| who.admits(principal)),
            None => self.default == Decision::Allow,
        };
        if allowed {
            return Ok(());
        }
        Err(Denied {
            action: action.as_str(),
            destination: destination.to_owned(),
            who: principal.map_or_else(
                || "anonymous sessions".to_owned(),
                |p| format!("user {}", p.name),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(name: &str, roles: &[&str]) -> Principal {
        Principal {
            name: name.to_owned(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            expires_at: None,
        }
    }

    fn rule(destination: &str, actions: &[Action], allow: &[&str]) -> RuleConfig {
        RuleConfig {
            destination: destination.to_owned(),
            actions: actions.to_vec(),
            allow: allow.iter().map(|a| (*a).to_owned()).collect(),
        }
    }

    #[test]
    fn first_matching_rule_decides() {
        let config = AuthorizationConfig {
            default: Decision::Deny,
            rules: vec![
                rule("/topic/admin/**", &[], &["role:admin"]),
                rule("/topic/chat/**", &[Action::Subscribe], &["*"]),
                rule("/app/chat/**", &[Action::Send], &["authenticated"]),
                rule("/user/bob/**", &[Action::Send], &["user:alice"]),
                rule("/topic/public", &[], &["anonymous"]),
            ],
        };
        let authz = Authorizer::new(&config).expect("valid rules");
        let admin = principal("root", &["admin"]);
        let alice = principal("alice", &[]);
        let bob = principal("bob", &["user"]);
        let cases = [
            (Action::Subscribe, "/topic/admin/logs", Some(&admin), true),
            (Action::Send, "/topic/admin/logs", Some(&admin), true),
            (Action::Subscribe, "/topic/admin/logs", Some(&alice), false),
            (Action::Subscribe, "/topic/admin/logs", None, false),
            (Action::Subscribe, "/topic/chat/room/1", None, true),
            // No rule for SEND to /topic/chat: default deny.
            (Action::Send, "/topic/chat/room/1", Some(&alice), false),
            (Action::Send, "/app/chat/message", Some(&alice), true),
            (Action::Send, "/app/chat/message", None, false),
            (Action::Send, "/user/bob/queue/x", Some(&alice), true),
            (Action::Send, "/user/bob/queue/x", Some(&bob), false),
            (Action::Send, "/topic/public", None, true),
            (Action::Send, "/topic/public", Some(&alice), false),
            (Action::Subscribe, "/queue/other", Some(&admin), false),
        ];
        for (action, destination, who, allowed) in cases {
            let got = authz.check(action, destination, who);
            assert_eq!(got.is_ok(), allowed, "{action:?} {destination} by {who:?}");
        }
        let denied = authz
            .check(Action::Send, "/topic/chat/room/1", Some(&alice))
            .expect_err("denied");
        assert_eq!(
            denied.to_string(),
            "SEND to /topic/chat/room/1 is not allowed for user alice"
        );
    }

    #[test]
    fn default_allow_without_rules_checks_nothing() {
        let authz = Authorizer::new(&AuthorizationConfig::default()).expect("valid");
        assert!(authz.allows_everything());
        assert!(authz.check(Action::Send, "/anything", None).is_ok());
    }

    #[test]
    fn malformed_rules_are_config_errors() {
        for (destination, allow) in [
            ("topic/x", "*"),
            ("/topic/x", "role:"),
            ("/topic/x", "admins"),
            ("/topic/x", "group:x"),
        ] {
            let config = AuthorizationConfig {
                default: Decision::Allow,
                rules: vec![rule(destination, &[], &[allow])],
            };
            let err = Authorizer::new(&config).expect_err("invalid");
            assert!(err.starts_with("rule 1:"), "{err}");
        }
    }
}
