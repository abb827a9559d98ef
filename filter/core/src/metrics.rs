//! What both roles' metric tables share: how a host must define a metric, the
//! macro that writes a role's table (one list of names and kinds every host
//! adapter defines from, so the wasm filter and the native module show the
//! same `/stats` names without keeping a list each), and the host's ids for a
//! table. The tables themselves live with their role
//! (`inbound::metrics::InboundMetric`, `outbound::metrics::OutboundMetric`).

/// How a host must define a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
}

/// A role's table of metrics: every entry, its name (before the host's
/// prefix) and kind.
pub trait MetricTable: Copy + 'static {
    /// Every metric, in declaration order (the index of [`MetricIds`]).
    const ALL: &'static [Self];
    fn name(self) -> &'static str;
    fn kind(self) -> MetricKind;
    /// Position in [`MetricTable::ALL`].
    fn index(self) -> usize;
}

/// Writes a role's metric enum and its [`MetricTable`] implementation.
macro_rules! metric_table {
    ($(#[$doc:meta])* $table:ident { $($(#[$vdoc:meta])* $variant:ident => $kind:ident $name:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $table {
            $($(#[$vdoc])* $variant,)*
        }

        impl $table {
            /// Every metric, in declaration order (the index of [`MetricIds`]).
            pub const ALL: &'static [$table] = &[$($table::$variant,)*];

            /// The name on `/stats`, before the host's prefix.
            pub const fn name(self) -> &'static str {
                match self {
                    $($table::$variant => $name,)*
                }
            }

            pub const fn kind(self) -> $crate::metrics::MetricKind {
                match self {
                    $($table::$variant => $crate::metrics::MetricKind::$kind,)*
                }
            }
        }

        impl $crate::metrics::MetricTable for $table {
            const ALL: &'static [$table] = $table::ALL;
            fn name(self) -> &'static str {
                $table::name(self)
            }
            fn kind(self) -> $crate::metrics::MetricKind {
                $table::kind(self)
            }
            fn index(self) -> usize {
                self as usize
            }
        }
    };
}
pub(crate) use metric_table;

/// The host's id for each metric of table `M` (`None`: the host refused to
/// define it, and it is then simply not counted: metrics never decide a request).
#[derive(Debug, Clone)]
pub struct MetricIds<Id, M> {
    ids: Vec<Option<Id>>,
    table: core::marker::PhantomData<M>,
}

impl<Id: Copy, M: MetricTable> MetricIds<Id, M> {
    /// Defines every metric of the table through the host's `define`.
    pub fn define(mut define: impl FnMut(MetricKind, &str) -> Option<Id>) -> MetricIds<Id, M> {
        MetricIds {
            ids: M::ALL.iter().map(|m| define(m.kind(), m.name())).collect(),
            table: core::marker::PhantomData,
        }
    }

    pub fn get(&self, metric: M) -> Option<Id> {
        self.ids.get(metric.index()).copied().flatten()
    }
}
