//! The Python tree: `servers/<server>/<tool>.py` (`TypedDict`s and one `async def` per tool),
//! `servers/<server>/__init__.py`, `servers/__init__.py` and the runtime `servers/_client.py`
//! on the `mcp` package (2.x).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::Value;

use super::names::{self, Namer};
use super::plan::{
    clean, string_literal, tool_doc, union_of, Plan, ServerPlan, ToolPlan, ToolTypes, PY_MODULE_NAMES,
};
use super::schema::{ObjectDef, Ty, Types};
use super::typescript::optional_input;
use super::{File, Options, HEADER};

const RUNTIME: &str = include_str!("runtime/_client.py");

/// Every file of the tree.
pub(crate) fn render(plan: &Plan<'_>, options: &Options) -> Vec<File> {
    let scope = options.scope_header.as_deref().map(string_literal);
    let mut files = vec![File::runtime("servers/_client.py", "#", RUNTIME, scope, "None")];
    let mut top = format!(
        "# {HEADER}\n\"\"\"The MCP servers behind the gateway, one subpackage each (see README.md).\"\"\"\n\n__all__ = ["
    );
    for (i, s) in plan.servers.iter().enumerate() {
        if i > 0 {
            top.push_str(", ");
        }
        top.push_str(&string_literal(&s.dir));
        files.extend(server(s));
    }
    top.push_str("]\n");
    files.push(File::new("servers/__init__.py", top));
    files
}

fn server(s: &ServerPlan<'_>) -> Vec<File> {
    let mut text = format!("The tools of server {:?}.", s.name);
    if let Some(note) = &s.note {
        text.push_str("\n\n");
        text.push_str(note);
    }
    let mut index = format!("# {HEADER}\n{}\n", docstring(&text, ""));
    let mut files = Vec::new();
    let mut all = Vec::new();
    // Type names are unique in the whole package (and apart from every function name).
    let mut reserved = PY_MODULE_NAMES.to_vec();
    reserved.extend(s.tools.iter().map(|t| t.function.as_str()));
    let mut type_names = Namer::with_reserved(&reserved);
    for t in &s.tools {
        let _ = writeln!(index, "from .{} import {}", t.file, t.function);
        all.push(string_literal(&t.function));
        let (text, names) = tool_file(t, type_names);
        type_names = names;
        files.push(File::new(format!("servers/{}/{}.py", s.dir, t.file), text));
    }
    let _ = writeln!(index, "\n__all__ = [{}]", all.join(", "));
    files.push(File::new(format!("servers/{}/__init__.py", s.dir), index));
    files
}

/// The names of `typing` a file uses.
#[derive(Default)]
struct Imports(BTreeSet<&'static str>);

/// The file of one tool, and `type_names` with its type names taken.
fn tool_file(t: &ToolPlan<'_>, type_names: Namer) -> (String, Namer) {
    let tool = t.tool;
    let ToolTypes {
        mut types,
        input: (input_name, input),
        output,
    } = ToolTypes::new(tool, type_names);
    let mut imports = Imports::default();
    let mut body = String::new();
    for o in &types.objects {
        body.push_str("\n\n");
        object(&mut body, o, &types, &mut imports);
    }
    let input_ty = alias(&mut body, &mut types, &input_name, &input, &mut imports);
    let output_ty = output.map(|(name, o)| alias(&mut body, &mut types, &name, &o, &mut imports));

    let text = tool_doc(t, "``", "the whole result as a dict");
    let (param, arg) = if optional_input(&input, &types) {
        (format!("{input_ty} | None = None"), "input or {}")
    } else {
        (input_ty, "input")
    };
    let ret = output_ty.unwrap_or_else(|| "ToolResult".to_string());
    let _ = write!(
        body,
        "\n\nasync def {}(input: {param}) -> {ret}:\n{}\n    return await call_mcp_tool({}, {arg})\n",
        t.function,
        docstring(&text, "    "),
        string_literal(&tool.qualified),
    );
    let mut head = format!("# {HEADER}\nfrom __future__ import annotations\n\n");
    if !imports.0.is_empty() {
        let list: Vec<&str> = imports.0.iter().copied().collect();
        let _ = writeln!(head, "from typing import {}\n", list.join(", "));
    }
    head.push_str("from .._client import ToolResult, call_mcp_tool\n");
    (head + &body, types.into_names())
}

/// A `TypedDict`: class syntax when every key is a plain identifier, else the functional form.
fn object(out: &mut String, o: &ObjectDef, types: &Types, imports: &mut Imports) {
    imports.0.insert("TypedDict");
    let class_syntax = o
        .fields
        .iter()
        .all(|f| names::is_plain_key(&f.key) && !names::is_py_keyword(&f.key) && !f.key.starts_with("__"));
    let field_ty = |f: &super::schema::Field, imports: &mut Imports| {
        let t = ty(&f.ty, types, imports);
        if f.required {
            t
        } else {
            imports.0.insert("NotRequired");
            format!("NotRequired[{t}]")
        }
    };
    if class_syntax {
        let _ = writeln!(out, "class {}(TypedDict):", o.name);
        if let Some(d) = &o.description {
            let _ = writeln!(out, "{}\n", docstring(d, "    "));
        }
        for f in &o.fields {
            if let Some(d) = &f.description {
                out.push_str(&comment(d, "    "));
            }
            let _ = writeln!(out, "    {}: {}", f.key, field_ty(f, imports));
        }
    } else {
        if let Some(d) = &o.description {
            out.push_str(&comment(d, ""));
        }
        let _ = writeln!(
            out,
            "{} = TypedDict(\n    {},\n    {{",
            o.name,
            string_literal(&o.name)
        );
        for f in &o.fields {
            if let Some(d) = &f.description {
                out.push_str(&comment(d, "        "));
            }
            let _ = writeln!(
                out,
                "        {}: {},",
                string_literal(&f.key),
                field_ty(f, imports)
            );
        }
        out.push_str("    },\n)\n");
    }
}

/// The name of a top-level type: the object's own name, or a new alias for anything else.
fn alias(body: &mut String, types: &mut Types, name: &str, t: &Ty, imports: &mut Imports) -> String {
    if let Ty::Object(i) = t {
        return types.objects[*i].name.clone();
    }
    let rendered = ty(t, types, imports);
    let name = types.claim_name(name);
    let _ = write!(body, "\n\n{name} = {rendered}\n");
    name
}

fn ty(t: &Ty, types: &Types, imports: &mut Imports) -> String {
    match t {
        Ty::Any => {
            imports.0.insert("Any");
            "Any".into()
        }
        Ty::String => "str".into(),
        Ty::Number => "float".into(),
        Ty::Integer => "int".into(),
        Ty::Boolean => "bool".into(),
        Ty::Null => "None".into(),
        Ty::Literal(vs) => {
            // `Literal` takes str, int, bool and None; a float literal is typed as `float`.
            let (floats, exact): (Vec<&Value>, Vec<&Value>) = vs
                .iter()
                .partition(|v| v.as_f64().is_some() && !v.is_i64() && !v.is_u64());
            let mut parts = Vec::new();
            if !exact.is_empty() {
                imports.0.insert("Literal");
                let items: Vec<String> = exact.iter().map(|v| literal(v)).collect();
                parts.push(format!("Literal[{}]", items.join(", ")));
            }
            if !floats.is_empty() {
                parts.push("float".into());
            }
            parts.join(" | ")
        }
        Ty::Array(inner) => format!("list[{}]", ty(inner, types, imports)),
        Ty::Map(inner) => format!("dict[str, {}]", ty(inner, types, imports)),
        Ty::Object(i) => types.objects[*i].name.clone(),
        Ty::Union(ts) => union_of(ts.iter().map(|t| ty(t, types, imports))),
    }
}

fn literal(v: &Value) -> String {
    match v {
        Value::String(s) => string_literal(s),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// A docstring at `indent`, closing on its own line. Backslashes are doubled; when the text
/// holds `"""`, every `"` is escaped.
fn docstring(text: &str, indent: &str) -> String {
    let mut text = clean(text).replace('\\', "\\\\");
    if text.contains("\"\"\"") {
        text = text.replace('"', "\\\"");
    }
    let mut out = format!("{indent}\"\"\"");
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.push('\n');
            if !line.trim().is_empty() {
                out.push_str(indent);
            }
        }
        out.push_str(line.trim_end());
    }
    if text.lines().count() > 1 {
        let _ = write!(out, "\n{indent}");
    }
    out.push_str("\"\"\"");
    if text.ends_with('"') && text.lines().count() <= 1 {
        // `..."` + `"""` would close early: close on the next line instead.
        out.truncate(out.len() - 3);
        let _ = write!(out, "\n{indent}\"\"\"");
    }
    out
}

/// `#` comment lines at `indent`.
fn comment(text: &str, indent: &str) -> String {
    clean(text)
        .lines()
        .map(|l| format!("{indent}# {}\n", l.trim_end()).replace("# \n", "#\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn render(schema: Value) -> (String, Vec<&'static str>) {
        let mut types = Types::default();
        let t = types.add(&schema, "X");
        let mut imports = Imports::default();
        let s = ty(&t, &types, &mut imports);
        (s, imports.0.into_iter().collect())
    }

    #[test]
    fn types() {
        assert_eq!(render(json!({"type": "integer"})).0, "int");
        assert_eq!(
            render(json!({"enum": ["a", 1, null, true, 1.5]})),
            ("Literal[\"a\", 1, None, True] | float".into(), vec!["Literal"])
        );
        assert_eq!(
            render(json!({"type": "array", "items": {"type": ["string", "null"]}})).0,
            "list[str | None]"
        );
        assert_eq!(
            render(json!({"type": "object", "additionalProperties": {"type": "boolean"}})).0,
            "dict[str, bool]"
        );
        assert_eq!(render(json!({"$ref": "#/x"})), ("Any".into(), vec!["Any"]));
    }

    #[test]
    fn typed_dicts() {
        let mut types = Types::default();
        types.add(
            &json!({"type": "object", "properties": {
                "email": {"type": "string", "description": "who"},
                "n": {"type": "integer"}}, "required": ["email"]}),
            "A",
        );
        types.add(
            &json!({"type": "object", "properties": {"from": {"type": "string"}, "user-id": {}}}),
            "B",
        );
        let mut out = String::new();
        let mut imports = Imports::default();
        for o in &types.objects {
            object(&mut out, o, &types, &mut imports);
        }
        assert_eq!(
            out,
            "class A(TypedDict):\n    # who\n    email: str\n    n: NotRequired[int]\n\
             B = TypedDict(\n    \"B\",\n    {\n        \"from\": NotRequired[str],\n        \
             \"user-id\": NotRequired[Any],\n    },\n)\n"
        );
    }

    #[test]
    fn docstrings_cannot_be_closed_early() {
        assert_eq!(docstring("say \"hi\"", ""), "\"\"\"say \"hi\"\n\"\"\"");
        assert_eq!(docstring("a \"\"\" b", ""), "\"\"\"a \\\"\\\"\\\" b\"\"\"");
        assert_eq!(docstring("c:\\dir", ""), "\"\"\"c:\\\\dir\"\"\"");
        assert_eq!(
            docstring("one\n\ntwo", "    "),
            "    \"\"\"one\n\n    two\n    \"\"\""
        );
    }
}
