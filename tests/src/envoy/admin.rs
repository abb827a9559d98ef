//! Parsing Envoy admin API answers.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::Context as _;
use serde_json::Value;

/// `/stats?format=json` → name → value for counters and gauges (histograms
/// and text readouts are left out).
pub fn parse_stats(json: &str) -> anyhow::Result<BTreeMap<String, u64>> {
    let doc: Value = serde_json::from_str(json).context("parsing /stats?format=json")?;
    let mut stats = BTreeMap::new();
    for entry in doc["stats"].as_array().into_iter().flatten() {
        if let (Some(name), Some(value)) = (entry["name"].as_str(), entry["value"].as_u64()) {
            stats.insert(name.to_string(), value);
        }
    }
    Ok(stats)
}

/// `/listeners?format=json` → (listener name, bound address), in config order.
pub fn parse_listeners(json: &str) -> anyhow::Result<Vec<(String, SocketAddr)>> {
    let doc: Value = serde_json::from_str(json).context("parsing /listeners?format=json")?;
    let mut listeners = Vec::new();
    for status in doc["listener_statuses"].as_array().into_iter().flatten() {
        let name = status["name"].as_str().unwrap_or_default().to_string();
        let socket = &status["local_address"]["socket_address"];
        if let (Some(address), Some(port)) =
            (socket["address"].as_str(), socket["port_value"].as_u64())
        {
            let addr: SocketAddr = format!("{address}:{port}")
                .parse()
                .with_context(|| format!("listener {name} address {address}:{port}"))?;
            listeners.push((name, addr));
        }
    }
    Ok(listeners)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stats_and_listeners() {
        let stats = parse_stats(
            r#"{"stats":[{"name":"a.b","value":3},{"name":"t","value":"text"},{"histograms":{}}]}"#,
        )
        .unwrap();
        assert_eq!(stats.get("a.b"), Some(&3));
        assert_eq!(stats.len(), 1);

        let listeners = parse_listeners(
            r#"{"listener_statuses":[{"name":"main","local_address":{"socket_address":{"address":"127.0.0.1","port_value":1234}}}]}"#,
        )
        .unwrap();
        assert_eq!(
            listeners,
            vec![("main".to_string(), "127.0.0.1:1234".parse().unwrap())]
        );
    }
}
