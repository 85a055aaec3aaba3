//! Lists across servers (`tools/list` and the others), their cursors, and the whole catalog
//! `search_tools` reads.

use super::*;

impl Aggregate {
    /// A fan-out list: every server the client may use (or those the cursor names), at once.
    pub(super) async fn list(
        &self,
        s: &Arc<Session>,
        cs: &ClientScope,
        method: &str,
        key: &str,
        msg: &Value,
        id: &Value,
    ) -> Response<Body> {
        let own_tools = method == "tools/list";
        let cursor = msg.pointer("/params/cursor").and_then(Value::as_str);
        let targets: Vec<(usize, Option<String>)> = match cursor {
            None => self
                .sh
                .members
                .iter()
                .enumerate()
                .filter(|(_, m)| cs.may_use(&m.name))
                .map(|(i, _)| (i, None))
                .collect(),
            Some(c) => match decode_cursor(c) {
                Some(map) => map
                    .into_iter()
                    .filter_map(|(name, c)| {
                        let i = *self.sh.by_name.get(name.as_str())?;
                        cs.may_use(&self.sh.members[i].name).then_some((i, Some(c)))
                    })
                    .collect(),
                None => return json_error(StatusCode::OK, Some(id), INVALID_PARAMS, "invalid cursor"),
            },
        };
        let mut items: Vec<Vec<u8>> = Vec::new();
        if own_tools && cursor.is_none() {
            for t in self.sh.own.definitions(self.sh.expose) {
                items.push(serde_json::to_vec(&t).unwrap_or_default());
            }
        }
        let fan_out = !(own_tools && self.sh.expose == Expose::Search);
        let mut next: Vec<(String, String)> = Vec::new();
        if fan_out {
            let pages = futures_util::future::join_all(
                targets
                    .iter()
                    .map(|(m, c)| self.page(s, cs, *m, method, key, c.as_deref())),
            )
            .await;
            for ((m, _), page) in targets.iter().zip(pages) {
                match page {
                    Ok((page_items, next_cursor)) => {
                        items.extend(page_items);
                        if let Some(c) = next_cursor {
                            next.push((self.sh.members[*m].name.to_string(), c));
                        }
                    }
                    Err(e) => tracing::warn!(
                        server = %self.sh.members[*m].name,
                        method,
                        "left out of the aggregated list: {}", e.0
                    ),
                }
            }
        }
        let mut out = Vec::with_capacity(items.iter().map(Vec::len).sum::<usize>() + 128);
        out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
        out.extend_from_slice(&serde_json::to_vec(id).unwrap_or_else(|_| b"null".to_vec()));
        out.extend_from_slice(format!(",\"result\":{{\"{key}\":[").as_bytes());
        for (i, it) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(it);
        }
        out.push(b']');
        if !next.is_empty() {
            out.extend_from_slice(b",\"nextCursor\":");
            out.extend_from_slice(&serde_json::to_vec(&encode_cursor(&next)).unwrap_or_default());
        }
        out.extend_from_slice(b"}}");
        raw_json(StatusCode::OK, Bytes::from(out))
    }

    /// One page of one member's list, its items already renamed for `/mcp`.
    pub(super) async fn page(
        &self,
        s: &Arc<Session>,
        cs: &ClientScope,
        m: usize,
        method: &str,
        key: &str,
        cursor: Option<&str>,
    ) -> Result<(Vec<Vec<u8>>, Option<String>), UpError> {
        let params = match cursor {
            Some(c) => json!({"cursor": c}),
            None => json!({}),
        };
        let resp = self.call(s, cs, m, method, params).await?;
        if let Some(e) = resp.value.get("error") {
            return Err(UpError(format!(
                "the server answered an error: {}",
                e.get("message").and_then(Value::as_str).unwrap_or("?")
            )));
        }
        let Some(Value::Array(list)) = resp.value.pointer(&format!("/result/{key}")) else {
            return Err(UpError(format!("the server's answer has no {key} list")));
        };
        let server = self.sh.members[m].name.clone();
        let prefix = &self.sh.members[m].prefix;
        let rename = self.sh.unprefixed != Some(m);
        let policy = (self.sh.own.policy)();
        let mut out = Vec::with_capacity(list.len());
        for i in 0..list.len() {
            let Some(mut item) = resp.subtree(&[Step::Key("result"), Step::Key(key), Step::Index(i)]) else {
                continue;
            };
            match key {
                "tools" | "prompts" => {
                    let Some(name) = item.value.get("name").and_then(Value::as_str).map(str::to_owned) else {
                        continue;
                    };
                    if rename {
                        item.value["name"] = Value::String(names::join(prefix, &name));
                    } else if tools::is_own(&name) || self.member_of_name(&name).is_some_and(|(o, _)| o != m)
                    {
                        tracing::warn!(server = %server, name, "left out of /mcp: the name is taken by the gateway or by another server's prefix");
                        continue;
                    }
                    if key == "tools" {
                        tools::annotate(&mut item.value, &server, &name, &policy);
                    }
                }
                _ if !rename => {}
                "resources" => wrap_uri_at(&mut item.value, "/uri", &server),
                _ => {
                    if let Some(Value::String(t)) = item.value.get_mut("uriTemplate") {
                        *t = names::wrap_uri(&server, t);
                    }
                }
            }
            out.push(item.to_vec());
        }
        let next = resp
            .value
            .pointer("/result/nextCursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok((out, next))
    }

    /// Every tool the client may use (for `search_tools`), read once and kept until a list
    /// changes or [`CATALOG_TTL`] passes.
    pub(super) async fn catalog(
        &self,
        s: &Arc<Session>,
        cs: &ClientScope,
    ) -> Result<Arc<tools::Catalog>, UpError> {
        let mut slot = s.catalog.lock().await;
        if let Some(c) = &*slot {
            if c.built.elapsed() < CATALOG_TTL {
                return Ok(c.clone());
            }
        }
        let members: Vec<usize> = (0..self.sh.members.len())
            .filter(|&m| cs.may_use(&self.sh.members[m].name))
            .collect();
        let all = futures_util::future::join_all(members.iter().map(|&m| async move {
            let mut items = Vec::new();
            let mut cursor: Option<String> = None;
            for _ in 0..MAX_PAGES {
                let (page, next) = self
                    .page(s, cs, m, "tools/list", "tools", cursor.as_deref())
                    .await?;
                items.extend(page);
                match next {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            Ok::<_, UpError>(items)
        }))
        .await;
        let mut tools = Vec::new();
        for (m, r) in members.iter().zip(all) {
            match r {
                Ok(items) => {
                    for bytes in items {
                        if let Ok(v) = serde_json::from_slice::<Value>(&bytes) {
                            tools.push((self.sh.members[*m].name.to_string(), v));
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(server = %self.sh.members[*m].name, "left out of search_tools: {}", e.0)
                }
            }
        }
        let c = Arc::new(tools::Catalog::new(tools));
        *slot = Some(c.clone());
        Ok(c)
    }
}

/// The cursor of the next page: each server still listing, with its own cursor.
pub(super) fn encode_cursor(next: &[(String, String)]) -> String {
    use base64::Engine;
    let map: serde_json::Map<String, Value> = next
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Value::Object(map).to_string())
}

pub(super) fn decode_cursor(c: &str) -> Option<Vec<(String, String)>> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).ok()?;
    let Value::Object(map) = serde_json::from_slice(&bytes).ok()? else {
        return None;
    };
    map.into_iter()
        .map(|(k, v)| Some((k, v.as_str()?.to_owned())))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_ones_are_refused() {
        let next = vec![
            ("crm".to_owned(), "p2".to_owned()),
            ("mail-eu".to_owned(), "x".to_owned()),
        ];
        assert_eq!(decode_cursor(&encode_cursor(&next)).unwrap(), next);
        assert!(decode_cursor("not base64!").is_none());
        use base64::Engine;
        let arr = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("[1]");
        assert!(decode_cursor(&arr).is_none());
    }
}
