//! A fast path for the Handlebars templates plugins ship with: the subset
//! the built-ins use — `{{path}}`, `{{{path}}}`, `{{#if}}`, `{{#unless}}`,
//! `{{#each}}` over lists (with `this`, `@index`, `@first`, `@last`),
//! `{{else}}` — rendered the way the host's Handlebars (strict mode, no
//! escaping) renders them, including its rule that a block tag alone on its
//! line takes the whole line with it.
//!
//! Anything outside the subset, and any value it would have to guess about
//! (a missing field, `null`, a list printed as text), makes [`render`] give
//! up with `None`; the caller then asks the host, so the output (or the
//! error) is always what Handlebars gives. The SDK's tests and each
//! built-in plugin's tests compare both on every example.

use serde_json::Value;
use std::borrow::Cow;

#[derive(Debug)]
enum Token<'t> {
    Text(&'t str),
    Var(&'t str),
    Open { helper: Helper, path: &'t str },
    Else,
    Close(Helper),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Helper {
    If,
    Unless,
    Each,
}

/// Renders `template` against `data`, or `None` when the template or the
/// data leaves the subset this renderer is sure about.
pub fn render(template: &str, data: &Value) -> Option<String> {
    let tokens = tokenize(template)?;
    let nodes = parse(&tokens)?;
    let mut out = String::with_capacity(template.len() + template.len() / 2);
    let scope = Scope { this: data, index: None };
    render_nodes(&nodes, &scope, &mut out)?;
    Some(out)
}

/// Splits the template into tokens, applying Handlebars's standalone-line
/// rule to block tags.
fn tokenize(src: &str) -> Option<Vec<Token<'_>>> {
    // (token, start, end) with byte offsets into `src`.
    let mut raw: Vec<(Token<'_>, usize, usize)> = Vec::new();
    let mut pos = 0;
    while let Some(found) = src[pos..].find("{{") {
        let start = pos + found;
        if start > pos {
            raw.push((Token::Text(&src[pos..start]), pos, start));
        }
        if src[..start].ends_with('\\') {
            return None; // an escaped `\{{`
        }
        let triple = src[start..].starts_with("{{{");
        let (open, close) = if triple { (3, "}}}") } else { (2, "}}") };
        let inner_start = start + open;
        let inner_len = src[inner_start..].find(close)?;
        let inner = &src[inner_start..inner_start + inner_len];
        let end = inner_start + inner_len + close.len();
        let token = if triple { Token::Var(simple_path(inner.trim())?) } else { tag(inner.trim())? };
        raw.push((token, start, end));
        pos = end;
    }
    if pos < src.len() {
        raw.push((Token::Text(&src[pos..]), pos, src.len()));
    }
    // Standalone block tags: alone on their line, they drop the spaces
    // before them and the rest of the line after them.
    let mut trim_end = vec![false; raw.len()];
    let mut trim_line = vec![false; raw.len()];
    for (i, (token, start, end)) in raw.iter().enumerate() {
        if matches!(token, Token::Text(_) | Token::Var(_)) {
            continue;
        }
        let after = &src[*end..];
        let trailing_newline = after.trim_start_matches([' ', '\t']).starts_with(['\n', '\r']) || after.is_empty();
        let before = src[..*start].trim_end_matches([' ', '\t']);
        let leading_newline = before.ends_with(['\n', '\r']) || before.is_empty();
        if trailing_newline && leading_newline {
            if i > 0 {
                trim_end[i - 1] = true;
            }
            if i + 1 < raw.len() {
                trim_line[i + 1] = true;
            }
        }
    }
    let mut tokens = Vec::with_capacity(raw.len());
    for (i, (token, _, _)) in raw.into_iter().enumerate() {
        tokens.push(match token {
            Token::Text(mut t) => {
                if trim_line[i] {
                    t = t.trim_start_matches([' ', '\t']);
                    t = t.strip_prefix("\r\n").or_else(|| t.strip_prefix('\n')).unwrap_or(t);
                }
                if trim_end[i] {
                    t = t.trim_end_matches([' ', '\t']);
                }
                Token::Text(t)
            }
            other => other,
        });
    }
    Some(tokens)
}

/// A `{{…}}` tag's meaning, or `None` outside the subset.
fn tag(inner: &str) -> Option<Token<'_>> {
    if let Some(rest) = inner.strip_prefix('#') {
        let (name, path) = rest.split_once(char::is_whitespace)?;
        let helper = helper(name)?;
        return Some(Token::Open { helper, path: simple_path(path.trim())? });
    }
    if let Some(rest) = inner.strip_prefix('/') {
        return Some(Token::Close(helper(rest.trim())?));
    }
    if inner == "else" {
        return Some(Token::Else);
    }
    Some(Token::Var(simple_path(inner)?))
}

fn helper(name: &str) -> Option<Helper> {
    match name {
        "if" => Some(Helper::If),
        "unless" => Some(Helper::Unless),
        "each" => Some(Helper::Each),
        _ => None,
    }
}

/// A dotted path of plain names (`a.b`, `this.name`, `@index`), nothing else.
fn simple_path(p: &str) -> Option<&str> {
    let ok = !p.is_empty()
        && p.split('.').all(|seg| {
            let seg = seg.strip_prefix('@').unwrap_or(seg);
            !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
    ok.then_some(p)
}

#[derive(Debug)]
enum Node<'t> {
    Text(&'t str),
    Var(&'t str),
    Block { helper: Helper, path: &'t str, then: Vec<Node<'t>>, otherwise: Vec<Node<'t>> },
}

fn parse<'t>(tokens: &[Token<'t>]) -> Option<Vec<Node<'t>>> {
    let mut pos = 0;
    let nodes = parse_until(tokens, &mut pos, None)?;
    (pos == tokens.len()).then_some(nodes)
}

fn parse_until<'t>(tokens: &[Token<'t>], pos: &mut usize, open: Option<Helper>) -> Option<Vec<Node<'t>>> {
    let mut nodes = Vec::new();
    while let Some(token) = tokens.get(*pos) {
        match token {
            Token::Text(t) => nodes.push(Node::Text(t)),
            Token::Var(p) => nodes.push(Node::Var(p)),
            Token::Open { helper, path } => {
                *pos += 1;
                let then = parse_until(tokens, pos, Some(*helper))?;
                let otherwise = if matches!(tokens.get(*pos), Some(Token::Else)) {
                    *pos += 1;
                    parse_until(tokens, pos, Some(*helper))?
                } else {
                    Vec::new()
                };
                match tokens.get(*pos) {
                    Some(Token::Close(h)) if h == helper => {}
                    _ => return None,
                }
                nodes.push(Node::Block { helper: *helper, path, then, otherwise });
            }
            Token::Else | Token::Close(_) => return open.map(|_| nodes),
        }
        *pos += 1;
    }
    open.is_none().then_some(nodes)
}

/// The context a path is looked up in: `this`, and inside `#each` the
/// item's position.
struct Scope<'v> {
    this: &'v Value,
    index: Option<(usize, usize)>,
}

fn lookup<'v>(scope: &Scope<'v>, path: &str) -> Option<Cow<'v, Value>> {
    if let Some(var) = path.strip_prefix('@') {
        let (i, len) = scope.index?;
        return match var {
            "index" => Some(Cow::Owned(Value::from(i))),
            "first" => Some(Cow::Owned(Value::Bool(i == 0))),
            "last" => Some(Cow::Owned(Value::Bool(i + 1 == len))),
            _ => None,
        };
    }
    let mut segments = path.split('.').peekable();
    if segments.peek() == Some(&"this") {
        segments.next();
    }
    let mut v = scope.this;
    for seg in segments {
        v = v.as_object()?.get(seg)?;
    }
    Some(Cow::Borrowed(v))
}

/// Handlebars's truthiness (numbers: non-zero and normal).
fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(f64::is_normal),
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn render_nodes(nodes: &[Node<'_>], scope: &Scope<'_>, out: &mut String) -> Option<()> {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Var(path) => match lookup(scope, path)?.as_ref() {
                Value::String(s) => out.push_str(s),
                Value::Number(n) => out.push_str(&n.to_string()),
                Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                _ => return None,
            },
            Node::Block { helper: Helper::If, path, then, otherwise } => {
                let branch = if truthy(&*lookup(scope, path)?) { then } else { otherwise };
                render_nodes(branch, scope, out)?;
            }
            Node::Block { helper: Helper::Unless, path, then, otherwise } => {
                let branch = if truthy(&*lookup(scope, path)?) { otherwise } else { then };
                render_nodes(branch, scope, out)?;
            }
            Node::Block { helper: Helper::Each, path, then, otherwise } => {
                let found = lookup(scope, path)?;
                let Value::Array(items) = found.as_ref() else { return None };
                if items.is_empty() {
                    render_nodes(otherwise, scope, out)?;
                }
                for (i, item) in items.iter().enumerate() {
                    let inner = Scope { this: item, index: Some((i, items.len())) };
                    render_nodes(then, &inner, out)?;
                }
            }
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::render;
    use serde_json::json;

    /// The host's engine, configured as the host configures it.
    fn handlebars(template: &str, data: &serde_json::Value) -> Result<String, String> {
        let mut hb = handlebars::Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(handlebars::no_escape);
        hb.render_template(template, data).map_err(|e| e.to_string())
    }

    #[test]
    fn agrees_with_handlebars_on_the_subset() {
        let data = json!({
            "name": "orders", "port": 6379, "ratio": 0.5, "zero": 0, "on": true, "off": false, "empty": "",
            "user": {"name": "app", "file": "app"}, "none": null,
            "users": [{"name": "a", "file": "fa"}, {"name": "b", "file": "fb"}], "no_users": [],
            "hosts": ["h1", "h2"],
        });
        let templates = [
            "plain text\n",
            "a {{name}} b {{{port}}} {{ratio}} {{on}}\n",
            "{{#if on}}\nyes\n{{/if}}\nafter\n",
            "  {{#if off}}\n  yes\n  {{else}}\n  no {{user.name}}\n  {{/if}}\nend",
            "x {{#if on}}inline{{/if}} y\n",
            "{{#each users}}\nuser {{this.name}} {{name}} {{@index}} {{@first}} {{@last}}\n{{/each}}\n",
            "{{#each no_users}}\nnever\n{{else}}\nnobody\n{{/each}}\n",
            "{{#each hosts}}{{this}},{{/each}}\n",
            "{{#unless zero}}\nzero is falsy\n{{/unless}}\n{{#if empty}}no{{else}}empty is falsy{{/if}}\n",
            "{{#if user}}\n\t{{#each users}}\n\t  - {{file}}\n\t{{/each}}\n{{/if}}",
            "head\n{{#if on}}\n\n{{/if}}\n\ntail {{name}}",
            "line\r\n{{#if on}}\r\ncrlf\r\n{{/if}}\r\n",
        ];
        for t in templates {
            let expected = handlebars(t, &data).unwrap_or_else(|e| panic!("{t:?}: {e}"));
            assert_eq!(render(t, &data).as_deref(), Some(expected.as_str()), "template {t:?}");
        }
    }

    #[test]
    fn gives_up_outside_the_subset() {
        let data = json!({"a": "x", "list": [1], "none": null, "obj": {"k": 1}});
        for t in [
            "{{missing}}",
            "{{none}}",
            "{{list}}",
            "{{obj}}",
            "{{#with obj}}{{k}}{{/with}}",
            "{{! a comment }}",
            "{{~a}}",
            "\\{{a}}",
            "{{> partial}}",
            "{{../a}}",
            "{{#if a}}unclosed",
            "{{/if}}",
            "{{#each obj}}{{this}}{{/each}}",
            "{{lookup obj 'k'}}",
        ] {
            assert_eq!(render(t, &data), None, "template {t:?}");
        }
    }
}
