//! A minimal builder for dynamic SQL (filters, keyset paging, multi-row inserts).
//! It emits `?` placeholders on SQLite (much faster for wide inserts there) and `$n`
//! on PostgreSQL, and keeps the bound values alongside.

use super::Engine;

/// A value to bind.
#[derive(Debug, Clone)]
pub enum Val {
    S(String),
    OS(Option<String>),
    I(i64),
    OI(Option<i64>),
    B(bool),
}

impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::S(v.to_string())
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::S(v)
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Self {
        Val::S(v.clone())
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Self {
        Val::OS(v)
    }
}
impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::I(v)
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Self {
        Val::OI(v)
    }
}
impl From<bool> for Val {
    fn from(v: bool) -> Self {
        Val::B(v)
    }
}

/// SQL text plus its arguments.
#[derive(Debug, Clone)]
pub struct Sql {
    engine: Engine,
    pub text: String,
    pub args: Vec<Val>,
}

impl Sql {
    pub fn new(engine: Engine, start: &str) -> Self {
        Sql {
            engine,
            text: start.to_string(),
            args: Vec::new(),
        }
    }
    pub fn engine(&self) -> Engine {
        self.engine
    }
    pub fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }
    pub fn bind(&mut self, v: impl Into<Val>) -> &mut Self {
        self.args.push(v.into());
        match self.engine {
            Engine::Sqlite => self.text.push('?'),
            Engine::Postgres => {
                self.text.push('$');
                self.text.push_str(&self.args.len().to_string());
            }
        }
        self
    }
    /// `(?, ?, ...)` for a row of values.
    pub fn bind_row(&mut self, vals: Vec<Val>) -> &mut Self {
        self.text.push('(');
        for (i, v) in vals.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            self.bind(v);
        }
        self.text.push(')');
        self
    }
    /// `IN (?, ?, ...)`; an empty list yields a condition that is false.
    pub fn bind_in(&mut self, vals: impl IntoIterator<Item = Val>) -> &mut Self {
        let vals: Vec<Val> = vals.into_iter().collect();
        if vals.is_empty() {
            self.text.push_str("IN (NULL)");
            return self;
        }
        self.text.push_str("IN ");
        self.bind_row(vals)
    }
}

/// Binds every [`Val`] of `$args` onto the sqlx query `$q` (works for query,
/// query_as and query_scalar on either engine).
#[macro_export]
macro_rules! bind_all {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                $crate::store::Val::S(v) => q.bind(v),
                $crate::store::Val::OS(v) => q.bind(v),
                $crate::store::Val::I(v) => q.bind(v),
                $crate::store::Val::OI(v) => q.bind(v),
                $crate::store::Val::B(v) => q.bind(v),
            };
        }
        q
    }};
}

/// Escapes `%`, `_` and `\` for a `LIKE ... ESCAPE '\'` pattern.
pub fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `col` starts with `prefix` (case-sensitive), in a form an index serves: a range on
/// SQLite (bytewise text), `LIKE 'prefix%'` on PostgreSQL (`text_pattern_ops`).
pub fn prefix_match(q: &mut Sql, col: &str, prefix: &str) {
    match q.engine() {
        super::Engine::Sqlite => {
            q.push(&format!("({col} >= ")).bind(prefix.to_string());
            match super::directory::prefix_upper_bound(prefix) {
                Some(hi) => q.push(&format!(" AND {col} < ")).bind(hi).push(")"),
                None => q.push(")"),
            };
        }
        super::Engine::Postgres => {
            // `text_pattern_ops` indexes serve `LIKE 'prefix%'` whatever the collation.
            let pat = format!("{}%", like_escape(prefix));
            q.push(&format!("{col} LIKE "))
                .bind(pat)
                .push(" ESCAPE '\\'");
        }
    }
}
