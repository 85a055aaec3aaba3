//! The TypeScript tree: `servers/<server>/<tool>.ts` (interfaces and one async function per
//! tool, in lowerCamelCase), `servers/<server>/index.ts`, `servers/index.ts` and the runtime
//! `servers/_client.ts` on `@modelcontextprotocol/sdk`. ES modules: imports end in `.js`.

use std::fmt::Write as _;

use serde_json::Value;

use super::names::{self, Namer};
use super::plan::{
    clean, string_literal, tool_doc, union_of, Plan, ServerPlan, ToolPlan, ToolTypes, TS_MODULE_NAMES,
};
use super::schema::{Ty, Types};
use super::{File, Options, HEADER};

const RUNTIME: &str = include_str!("runtime/_client.ts");

/// Every file of the tree.
pub(crate) fn render(plan: &Plan<'_>, options: &Options) -> Vec<File> {
    let scope = options.scope_header.as_deref().map(string_literal);
    let mut files = vec![File::runtime(
        "servers/_client.ts",
        "//",
        RUNTIME,
        scope,
        "undefined",
    )];
    let mut top = format!("// {HEADER}\n// Every server, as a namespace.\n");
    for s in &plan.servers {
        let _ = writeln!(top, "export * as {} from \"./{}/index.js\";", s.dir, s.dir);
        files.extend(server(s));
    }
    files.push(File::new("servers/index.ts", top));
    files
}

fn server(s: &ServerPlan<'_>) -> Vec<File> {
    let mut index = format!("// {HEADER}\n/**\n * The tools of server {:?}.", s.name);
    if let Some(note) = &s.note {
        let _ = write!(index, "\n *\n * {}", comment_safe(note));
    }
    index.push_str("\n */\n");
    let mut files = Vec::new();
    // `index.ts` re-exports every file: type names are unique in the whole directory.
    let mut type_names = Namer::with_reserved(TS_MODULE_NAMES);
    for t in &s.tools {
        let _ = writeln!(index, "export * from \"./{}.js\";", t.file);
        let (text, names) = tool_file(t, type_names);
        type_names = names;
        files.push(File::new(format!("servers/{}/{}.ts", s.dir, t.file), text));
    }
    files.push(File::new(format!("servers/{}/index.ts", s.dir), index));
    files
}

/// The file of one tool, and `type_names` with its type names taken.
fn tool_file(t: &ToolPlan<'_>, type_names: Namer) -> (String, Namer) {
    let tool = t.tool;
    let ToolTypes {
        mut types,
        input: (input_name, input),
        output,
    } = ToolTypes::new(tool, type_names);
    let mut body = String::new();
    for o in &types.objects {
        body.push('\n');
        if let Some(d) = &o.description {
            body.push_str(&doc(d, ""));
        }
        let _ = writeln!(body, "export interface {} {{", o.name);
        for f in &o.fields {
            if let Some(d) = &f.description {
                body.push_str(&doc(d, "  "));
            }
            let key = if names::is_plain_key(&f.key) {
                f.key.clone()
            } else {
                string_literal(&f.key)
            };
            let opt = if f.required { "" } else { "?" };
            let _ = writeln!(body, "  {key}{opt}: {};", ty(&f.ty, &types));
        }
        if o.open {
            body.push_str("  [key: string]: unknown;\n");
        }
        body.push_str("}\n");
    }
    let input_ty = alias(&mut body, &mut types, &input_name, &input);
    let output_ty = output.map(|(name, o)| alias(&mut body, &mut types, &name, &o));

    let text = tool_doc(t, "`", "the whole result");
    body.push('\n');
    body.push_str(&doc(&text, ""));
    let default = if optional_input(&input, &types) {
        " = {}"
    } else {
        ""
    };
    let (ret, import) = match &output_ty {
        Some(o) => (o.clone(), "callMCPTool"),
        None => ("ToolResult".to_string(), "callMCPTool, type ToolResult"),
    };
    let _ = writeln!(
        body,
        "export async function {}(input: {input_ty}{default}): Promise<{ret}> {{\n  return \
         callMCPTool<{ret}>({}, input);\n}}",
        t.function,
        string_literal(&tool.qualified)
    );
    let text = format!("// {HEADER}\nimport {{ {import} }} from \"../_client.js\";\n{body}");
    (text, types.into_names())
}

/// The name to use for a top-level type: the object's own name, or a new alias for anything
/// else.
fn alias(body: &mut String, types: &mut Types, name: &str, t: &Ty) -> String {
    if let Ty::Object(i) = t {
        return types.objects[*i].name.clone();
    }
    let rendered = ty(t, types);
    let name = types.claim_name(name);
    let _ = writeln!(body, "\nexport type {name} = {rendered};");
    name
}

/// Whether `{}` is a valid input: an object without required keys, a map, or anything.
pub(crate) fn optional_input(t: &Ty, types: &Types) -> bool {
    match t {
        Ty::Object(i) => types.objects[*i].fields.iter().all(|f| !f.required),
        Ty::Map(_) | Ty::Any => true,
        _ => false,
    }
}

fn ty(t: &Ty, types: &Types) -> String {
    match t {
        Ty::Any => "unknown".into(),
        Ty::String => "string".into(),
        Ty::Number | Ty::Integer => "number".into(),
        Ty::Boolean => "boolean".into(),
        Ty::Null => "null".into(),
        Ty::Literal(vs) => vs.iter().map(literal).collect::<Vec<_>>().join(" | "),
        Ty::Array(inner) => {
            let i = ty(inner, types);
            if matches!(**inner, Ty::Union(_) | Ty::Literal(_)) {
                format!("({i})[]")
            } else {
                format!("{i}[]")
            }
        }
        Ty::Map(inner) => format!("Record<string, {}>", ty(inner, types)),
        Ty::Object(i) => types.objects[*i].name.clone(),
        Ty::Union(ts) => union_of(ts.iter().map(|t| ty(t, types))),
    }
}

fn literal(v: &Value) -> String {
    match v {
        Value::String(s) => string_literal(s),
        other => other.to_string(),
    }
}

fn comment_safe(s: &str) -> String {
    clean(s).replace("*/", "*\\/")
}

/// A `/** ... */` block at `indent`.
fn doc(text: &str, indent: &str) -> String {
    let text = comment_safe(text);
    let mut out = format!("{indent}/**\n");
    for line in text.lines() {
        if line.trim().is_empty() {
            let _ = writeln!(out, "{indent} *");
        } else {
            let _ = writeln!(out, "{indent} * {}", line.trim_end());
        }
    }
    let _ = writeln!(out, "{indent} */");
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn render(schema: Value) -> String {
        let mut types = Types::default();
        let t = types.add(&schema, "X");
        ty(&t, &types)
    }

    #[test]
    fn types() {
        assert_eq!(render(json!({"type": "integer"})), "number");
        assert_eq!(
            render(json!({"enum": ["a", 1, null, true]})),
            "\"a\" | 1 | null | true"
        );
        assert_eq!(
            render(json!({"type": "array", "items": {"type": ["string", "null"]}})),
            "(string | null)[]"
        );
        assert_eq!(
            render(json!({"type": "object", "additionalProperties": {"type": "boolean"}})),
            "Record<string, boolean>"
        );
        assert_eq!(render(json!({"$ref": "#/x"})), "unknown");
        assert_eq!(
            render(json!({"anyOf": [{"type": "integer"}, {"type": "number"}]})),
            "number"
        );
    }

    #[test]
    fn doc_comments_cannot_be_closed_early() {
        assert_eq!(doc("a */ b\n\nc", ""), "/**\n * a *\\/ b\n *\n * c\n */\n");
    }
}
