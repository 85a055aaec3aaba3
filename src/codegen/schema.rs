//! JSON Schema → a small type model both emitters render: primitives, literals (`enum`,
//! `const`), arrays, maps, unions (`anyOf`, `oneOf`, type lists), named object types, and local
//! references (`#/$defs/Name`) as one named type each. What it does not model (remote or
//! cyclic `$ref`, `allOf` of several, tuples, `not`, ...) becomes "any value" (`unknown` /
//! `Any`), never a guess.
//!
//! ```
//! use mcp_pii_gateway::codegen::schema::{Ty, Types};
//! let mut types = Types::default();
//! let ty = types.add(&serde_json::json!({
//!     "type": "object",
//!     "properties": {"email": {"type": "string"}, "tags": {"type": "array", "items": {"enum": ["a", "b"]}}},
//!     "required": ["email"]
//! }), "LookupInput");
//! assert_eq!(ty, Ty::Object(0));
//! let obj = &types.objects[0];
//! assert_eq!(obj.name, "LookupInput");
//! assert!(obj.fields[0].required && !obj.fields[1].required);
//! ```

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::names::{type_name, Namer};

/// Nesting beyond this depth becomes "any value".
const MAX_DEPTH: usize = 24;

/// A type.
#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    /// Any JSON value.
    Any,
    /// A string.
    String,
    /// A number.
    Number,
    /// An integer.
    Integer,
    /// `true` or `false`.
    Boolean,
    /// `null`.
    Null,
    /// One of these JSON scalars.
    Literal(Vec<Value>),
    /// An array of the type.
    Array(Box<Ty>),
    /// An object with any keys and values of the type.
    Map(Box<Ty>),
    /// The named object type at this index of [`Types::objects`].
    Object(usize),
    /// One of these types.
    Union(Vec<Ty>),
}

/// A named object type.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectDef {
    /// Its type name, unique within its file.
    pub name: String,
    /// The properties in the schema's order.
    pub fields: Vec<Field>,
    /// Whether other keys are allowed (`additionalProperties` true or a schema).
    pub open: bool,
    /// The schema's `description`.
    pub description: Option<String>,
}

/// A property of an object type.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The JSON key.
    pub key: String,
    /// Its type.
    pub ty: Ty,
    /// Listed in `required`.
    pub required: bool,
    /// The property schema's `description`.
    pub description: Option<String>,
}

/// The object types of one file, in dependency order (an object's field types come first).
#[derive(Debug, Default, Clone)]
pub struct Types {
    /// Every object type, children before parents.
    pub objects: Vec<ObjectDef>,
    names: Namer,
    /// The schema being added (what local `$ref`s point into), its name, the types of the
    /// references resolved in it, and those being resolved (a cycle becomes "any value").
    root: Value,
    root_name: String,
    refs: BTreeMap<String, Ty>,
    resolving: Vec<String>,
}

impl Types {
    /// Types with `reserved` names unavailable.
    pub fn with_reserved(reserved: &[&str]) -> Types {
        Types::with_names(Namer::with_reserved(reserved))
    }

    /// Types whose names are unique in `names` too (names shared by several files that are
    /// re-exported together); get it back with [`into_names`](Self::into_names).
    pub fn with_names(names: Namer) -> Types {
        Types {
            objects: Vec::new(),
            names,
            root: Value::Null,
            root_name: String::new(),
            refs: BTreeMap::new(),
            resolving: Vec::new(),
        }
    }

    /// The namer, holding every name taken so far.
    pub fn into_names(self) -> Namer {
        self.names
    }

    /// The type of `schema`; object types get names from `name` (made unique in this file).
    pub fn add(&mut self, schema: &Value, name: &str) -> Ty {
        self.root = schema.clone();
        self.root_name = name.to_string();
        self.refs.clear();
        let ty = self.ty(schema, name, 0);
        self.root = Value::Null;
        ty
    }

    /// Claims a type name for something else in the file (an alias).
    pub fn claim_name(&mut self, name: &str) -> String {
        self.names.claim(name)
    }

    fn ty(&mut self, schema: &Value, name: &str, depth: usize) -> Ty {
        let Value::Object(s) = schema else {
            return Ty::Any;
        };
        if depth > MAX_DEPTH {
            return Ty::Any;
        }
        if let Some(r) = s.get("$ref") {
            return self.reference(r.as_str().unwrap_or(""), depth);
        }
        if let Some(c) = s.get("const") {
            return literal(std::slice::from_ref(c));
        }
        if let Some(Value::Array(values)) = s.get("enum") {
            return literal(values);
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(options)) = s.get(key) {
                let tys = options
                    .iter()
                    .enumerate()
                    .map(|(i, o)| self.ty(o, &format!("{name}{}", i + 1), depth + 1))
                    .collect();
                return union(tys);
            }
        }
        if let Some(Value::Array(all)) = s.get("allOf") {
            return match all.as_slice() {
                [one] => self.ty(one, name, depth + 1),
                _ => Ty::Any,
            };
        }
        match s.get("type") {
            Some(Value::String(t)) => self.of_type(t, s, name, depth),
            Some(Value::Array(ts)) => {
                let tys = ts
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|t| self.of_type(t, s, name, depth))
                    .collect();
                union(tys)
            }
            Some(_) => Ty::Any,
            None if s.contains_key("properties") => self.of_type("object", s, name, depth),
            None if s.contains_key("items") => self.of_type("array", s, name, depth),
            None => Ty::Any,
        }
    }

    /// A local reference (`#/$defs/Name`, `#/definitions/Name`, any JSON pointer into the
    /// schema): its type, one per reference, named after its last segment. Anything else, or a
    /// reference that loops back to itself, is "any value".
    fn reference(&mut self, r: &str, depth: usize) -> Ty {
        let Some(pointer) = r.strip_prefix('#') else {
            return Ty::Any;
        };
        if let Some(t) = self.refs.get(r) {
            return t.clone();
        }
        if self.resolving.iter().any(|x| x == r) {
            return Ty::Any;
        }
        let Some(target) = self.root.pointer(pointer).cloned() else {
            return Ty::Any;
        };
        let last = pointer.rsplit('/').next().unwrap_or("");
        let name = format!("{}{}", self.root_name, type_name(last));
        self.resolving.push(r.to_string());
        let t = self.ty(&target, &name, depth + 1);
        self.resolving.pop();
        self.refs.insert(r.to_string(), t.clone());
        t
    }

    fn of_type(&mut self, t: &str, s: &Map<String, Value>, name: &str, depth: usize) -> Ty {
        match t {
            "string" => Ty::String,
            "number" => Ty::Number,
            "integer" => Ty::Integer,
            "boolean" => Ty::Boolean,
            "null" => Ty::Null,
            "array" => match s.get("items") {
                Some(items @ Value::Object(_)) => {
                    Ty::Array(Box::new(self.ty(items, &format!("{name}Item"), depth + 1)))
                }
                _ => Ty::Array(Box::new(Ty::Any)),
            },
            "object" => self.object(s, name, depth),
            _ => Ty::Any,
        }
    }

    fn object(&mut self, s: &Map<String, Value>, name: &str, depth: usize) -> Ty {
        let props = match s.get("properties") {
            Some(Value::Object(p)) if !p.is_empty() => p,
            _ => {
                let values = match s.get("additionalProperties") {
                    Some(a @ Value::Object(_)) => self.ty(a, &format!("{name}Value"), depth + 1),
                    _ => Ty::Any,
                };
                return Ty::Map(Box::new(values));
            }
        };
        let required: Vec<&str> = match s.get("required") {
            Some(Value::Array(r)) => r.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        let name = self.names.claim(name);
        let fields = props
            .iter()
            .map(|(key, schema)| Field {
                key: key.clone(),
                ty: self.ty(schema, &format!("{name}{}", type_name(key)), depth + 1),
                required: required.contains(&key.as_str()),
                description: description(schema),
            })
            .collect();
        self.objects.push(ObjectDef {
            name,
            fields,
            open: matches!(
                s.get("additionalProperties"),
                Some(Value::Bool(true) | Value::Object(_))
            ),
            description: s.get("description").and_then(Value::as_str).map(str::to_string),
        });
        Ty::Object(self.objects.len() - 1)
    }
}

/// The `description` of a schema, if it is a non-empty string.
pub fn description(schema: &Value) -> Option<String> {
    schema
        .get("description")
        .and_then(Value::as_str)
        .filter(|d| !d.trim().is_empty())
        .map(str::to_string)
}

/// A literal type of the JSON scalars in `values`; anything else in them makes it "any value".
fn literal(values: &[Value]) -> Ty {
    if values.is_empty() || values.iter().any(|v| v.is_array() || v.is_object()) {
        return Ty::Any;
    }
    let mut out: Vec<Value> = Vec::new();
    for v in values {
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    Ty::Literal(out)
}

/// The union of `tys`, flattened and without repeats; "any value" absorbs everything.
fn union(tys: Vec<Ty>) -> Ty {
    let mut out: Vec<Ty> = Vec::new();
    for t in tys {
        let parts = match t {
            Ty::Any => return Ty::Any,
            Ty::Union(inner) => inner,
            t => vec![t],
        };
        for p in parts {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    match out.len() {
        0 => Ty::Any,
        1 => out.pop().expect("one element"),
        _ => Ty::Union(out),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn ty(schema: Value) -> (Ty, Vec<ObjectDef>) {
        let mut t = Types::default();
        let ty = t.add(&schema, "T");
        (ty, t.objects)
    }

    #[test]
    fn primitives_and_fallbacks() {
        for (schema, want) in [
            (json!({"type": "string"}), Ty::String),
            (json!({"type": "integer"}), Ty::Integer),
            (json!({"type": "number"}), Ty::Number),
            (json!({"type": "boolean"}), Ty::Boolean),
            (json!({"type": "null"}), Ty::Null),
            (json!({}), Ty::Any),
            (json!(true), Ty::Any),
            (json!({"$ref": "#/$defs/X"}), Ty::Any),
            (json!({"$ref": "https://example.org/s.json"}), Ty::Any),
            (json!({"$ref": "#"}), Ty::Any),
            (json!({"type": "frobnicate"}), Ty::Any),
            (json!({"allOf": [{"type": "string"}, {"minLength": 1}]}), Ty::Any),
            (json!({"allOf": [{"type": "string"}]}), Ty::String),
            (json!({"type": "array"}), Ty::Array(Box::new(Ty::Any))),
            (
                json!({"type": "array", "items": [{"type": "string"}]}),
                Ty::Array(Box::new(Ty::Any)),
            ),
            (json!({"type": "object"}), Ty::Map(Box::new(Ty::Any))),
            (
                json!({"type": "object", "additionalProperties": {"type": "integer"}}),
                Ty::Map(Box::new(Ty::Integer)),
            ),
        ] {
            assert_eq!(ty(schema.clone()).0, want, "{schema}");
        }
    }

    #[test]
    fn literals_and_unions() {
        assert_eq!(
            ty(json!({"enum": ["a", "b", "a", 1, null]})).0,
            Ty::Literal(vec![json!("a"), json!("b"), json!(1), json!(null)])
        );
        assert_eq!(ty(json!({"const": "x"})).0, Ty::Literal(vec![json!("x")]));
        assert_eq!(ty(json!({"enum": [{"a": 1}]})).0, Ty::Any);
        assert_eq!(
            ty(json!({"type": ["string", "null"]})).0,
            Ty::Union(vec![Ty::String, Ty::Null])
        );
        assert_eq!(
            ty(json!({"anyOf": [{"type": "string"}, {"oneOf": [{"type": "string"}, {"type": "integer"}]}]}))
                .0,
            Ty::Union(vec![Ty::String, Ty::Integer])
        );
        assert_eq!(ty(json!({"anyOf": [{"type": "string"}, {}]})).0, Ty::Any);
    }

    #[test]
    fn nested_objects_are_named_children_first() {
        let (t, objects) = ty(json!({
            "type": "object",
            "description": "top",
            "additionalProperties": false,
            "properties": {
                "address": {"type": "object", "properties": {"city": {"type": "string", "description": "the city"}}, "required": ["city"]},
                "items": {"type": "array", "items": {"properties": {"sku": {"type": "string"}}}},
                "user-id": {"type": ["integer", "string"]}
            },
            "required": ["user-id", "nope"]
        }));
        assert_eq!(t, Ty::Object(2));
        let names: Vec<_> = objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["TAddress", "TItemsItem", "T"]);
        let top = &objects[2];
        assert!(!top.open);
        assert_eq!(top.description.as_deref(), Some("top"));
        assert_eq!(top.fields[0].ty, Ty::Object(0));
        assert_eq!(top.fields[1].ty, Ty::Array(Box::new(Ty::Object(1))));
        assert_eq!(top.fields[2].key, "user-id");
        assert!(top.fields[2].required && !top.fields[0].required);
        assert_eq!(objects[0].fields[0].description.as_deref(), Some("the city"));
        assert!(!objects[0].open, "open only when additionalProperties says so");
    }

    #[test]
    fn local_references_are_followed_once_and_cycles_end() {
        let (t, objects) = ty(json!({
            "type": "object",
            "$defs": {
                "Address": {"type": "object", "properties": {"city": {"type": "string"}}},
                "Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}},
                "Kind": {"enum": ["a", "b"]}
            },
            "properties": {
                "home": {"$ref": "#/$defs/Address"},
                "work": {"$ref": "#/$defs/Address"},
                "list": {"$ref": "#/$defs/Node"},
                "kind": {"$ref": "#/$defs/Kind"}
            }
        }));
        let names: Vec<_> = objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["TAddress", "TNode", "T"]);
        let top = &objects[2];
        assert_eq!(top.fields[0].ty, Ty::Object(0));
        assert_eq!(top.fields[1].ty, Ty::Object(0));
        assert_eq!(objects[1].fields[0].ty, Ty::Any, "a cycle ends in any value");
        assert_eq!(top.fields[3].ty, Ty::Literal(vec![json!("a"), json!("b")]));
        assert_eq!(t, Ty::Object(2));
    }

    #[test]
    fn names_are_unique_and_depth_is_bounded() {
        let mut t = Types::with_reserved(&["TX"]);
        let obj = json!({"type": "object", "properties": {"a": {"type": "string"}}});
        t.add(&obj, "TX");
        t.add(&obj, "TX");
        let names: Vec<_> = t.objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["TX_2", "TX_3"]);
        let mut deep = json!({"type": "string"});
        for _ in 0..100 {
            deep = json!({"type": "array", "items": deep});
        }
        let mut depth = 0;
        let mut ty = Types::default().add(&deep, "D");
        while let Ty::Array(inner) = ty {
            depth += 1;
            ty = *inner;
        }
        assert_eq!(ty, Ty::Any);
        assert!(depth <= MAX_DEPTH + 1);
    }
}
