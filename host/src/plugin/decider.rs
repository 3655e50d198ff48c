//! One cache-strategy instance reused for many `decide` calls: the cost of
//! a fresh `Store` + instantiation per key (what [`PluginHost::decide`]
//! pays) dominates a bulk load, while `decide` is pure and keeps nothing
//! between calls. Fuel and the epoch deadline are re-armed before every
//! call, and a failure is classified exactly as a one-off call's; after a
//! failure the instance is dropped (a trapped instance must not run again)
//! and every later call says so.

use super::bindings::strategy;
use super::classify::classify;
use super::sandbox::State;
use super::types::write_mode;
use super::{Decision, Limits, Plugin, PluginError, PluginHost, Pre, epoch_ticks, wrong_kind};
use wasmtime::Store;

/// A strategy plugin instantiated once, for many `decide` calls.
pub struct Decider {
    plugin: String,
    limits: Limits,
    store: Option<Store<State>>,
    instance: strategy::CacheStrategy,
    calls: u64,
}

impl PluginHost {
    /// Instantiates `plugin` (a cache strategy) once for [`Decider::decide`].
    pub fn decider(&self, plugin: &Plugin) -> Result<Decider, PluginError> {
        let Pre::Strategy(pre) = &plugin.pre else {
            return Err(wrong_kind(plugin, "decide"));
        };
        let name = plugin.info.name.clone();
        let mut store = self.new_store();
        let armed = arm(&mut store, &self.limits);
        match armed.and_then(|()| pre.instantiate(&mut store)) {
            Ok(instance) => {
                Ok(Decider { plugin: name, limits: self.limits.clone(), store: Some(store), instance, calls: 0 })
            }
            Err(e) => Err(classify(&name, "decide", &self.limits, Some(e), store.into_data())),
        }
    }
}

/// Gives the store a full fuel budget and a fresh deadline.
fn arm(store: &mut Store<State>, limits: &Limits) -> wasmtime::Result<()> {
    store.set_fuel(limits.fuel)?;
    store.set_epoch_deadline(epoch_ticks(limits));
    store.epoch_deadline_trap();
    Ok(())
}

impl Decider {
    /// The strategy's decision for one key (see the WIT `decide`).
    pub fn decide(
        &mut self,
        key: &str,
        tenant: Option<&str>,
        base_ttl_ms: u64,
        seed: u64,
    ) -> Result<Decision, PluginError> {
        let Some(store) = self.store.as_mut() else {
            return Err(PluginError::Trap {
                plugin: self.plugin.clone(),
                call: "decide",
                message: "an earlier `decide` of this instance failed; it is not called again".into(),
            });
        };
        self.calls += 1;
        let result = arm(store, &self.limits).and_then(|()| {
            self.instance.redplate_plugin_cache_strategy_api().call_decide(&mut *store, key, tenant, base_ttl_ms, seed)
        });
        match result {
            Ok(d) if !store.data().render_overflow => Ok(Decision {
                ttl_ms: d.ttl_ms,
                sliding: d.sliding,
                refresh_below_ms: d.refresh_below_ms,
                write_mode: write_mode(d.write_mode),
            }),
            other => {
                let error = other.err();
                let state = self.store.take().map(Store::into_data);
                Err(match state {
                    Some(state) => classify(&self.plugin, "decide", &self.limits, error, state),
                    None => PluginError::Trap {
                        plugin: self.plugin.clone(),
                        call: "decide",
                        message: "the instance is gone".into(),
                    },
                })
            }
        }
    }

    /// How many calls this instance answered or failed.
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// The plugin's name.
    pub fn plugin(&self) -> &str {
        &self.plugin
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::HostOptions;

    #[test]
    fn a_reused_instance_decides_as_fresh_ones_do_and_fails_the_same_way() {
        let host = PluginHost::new(HostOptions::default()).expect("host");
        let plugin = host.load_builtin("cache-aside").expect("cache-aside");
        let mut decider = host.decider(&plugin).expect("instantiates");
        for (i, key) in ["session:1", "product:2", "tenant:acme:x", ""].iter().enumerate() {
            let seed = 7 + i as u64;
            let fresh = host.decide(&plugin, key, Some("acme"), 600_000, seed).expect("decides").value;
            assert_eq!(decider.decide(key, Some("acme"), 600_000, seed).expect("decides"), fresh);
        }
        assert_eq!(decider.calls(), 4);

        // Too little fuel: classified as a one-off call's failure, then never called again.
        decider.limits.fuel = 1;
        let err = decider.decide("k", None, 1000, 1).expect_err("out of fuel");
        assert!(matches!(err, PluginError::FuelExhausted { call: "decide", .. }), "{err}");
        let again = decider.decide("k", None, 1000, 1).expect_err("dropped");
        assert!(again.to_string().contains("not called again"), "{again}");

        let generator = host.load_builtin("redis-conf").expect("redis-conf");
        assert!(host.decider(&generator).is_err(), "a generator has no `decide`");
    }
}
