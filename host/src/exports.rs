//! The guest functions the host calls, located once per component and
//! looked up in each instance only when first called.
//!
//! The generated bindings' `load` looks up and type-checks every function of
//! `websocket-request` (and `delivery`) in every new instance: about 18 000
//! instructions per connection, most of them type checks whose answer is the
//! same for every instance of a component. Here the types are checked once,
//! on the probe instance [`Runtime::compile`](crate::runtime::Runtime::compile)
//! makes, and an instance looks up a function the first time it is called:
//! a connection that is refused, or closed before its first message, never
//! looks up the connection methods at all.

use wasmtime::Store;
use wasmtime::component::{ComponentExportIndex, Func, Instance, InstancePre, ResourceAny};

use crate::bindings::{
    DELIVERY_INTERFACE, DeliveryIndices, HandleHeadParams, HeadResult, INTERFACE, Message,
    RequestIndices, Transmit,
};
use crate::runtime::ConnData;

/// The functions the host calls, by position in [`Located::index`] and in
/// each instance's cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Callee {
    /// `handle-head`.
    HandleHead,
    /// `[method]connection.receive`.
    Receive,
    /// `[method]connection.tick`.
    Tick,
    /// `[method]connection.close`.
    Close,
    /// `[method]connection.disconnected`.
    Disconnected,
    /// `delivery.deliver` (only when the component exports `delivery`).
    Deliver,
}

/// How many [`Callee`]s there are.
const CALLEES: usize = 6;

impl Callee {
    /// The export's name inside its interface.
    fn name(self) -> &'static str {
        match self {
            Callee::HandleHead => "handle-head",
            Callee::Receive => "[method]connection.receive",
            Callee::Tick => "[method]connection.tick",
            Callee::Close => "[method]connection.close",
            Callee::Disconnected => "[method]connection.disconnected",
            Callee::Deliver => "deliver",
        }
    }
}

/// Parameters of `connection.receive`.
pub(crate) type ReceiveParams<'a> = (ResourceAny, &'a [u8], u64);
/// Parameters of `connection.tick` and `connection.disconnected`.
pub(crate) type NowParams = (ResourceAny, u64);
/// Parameters of `connection.close`.
pub(crate) type CloseParams<'a> = (ResourceAny, u16, &'a str, u64);
/// Parameters of `delivery.deliver`.
pub(crate) type DeliverParams<'a> = (ResourceAny, &'a str, &'a Message, u64);

/// Where each [`Callee`] is in one component, found when it is compiled.
pub(crate) struct Located {
    index: [Option<ComponentExportIndex>; CALLEES],
}

impl Located {
    /// Finds the functions of `pre`'s component. Fails, naming what is
    /// missing, unless it exports `websocket-request` with every function
    /// of the contract (`delivery` is optional: it is used when the
    /// component exports all of it).
    pub(crate) fn new(pre: &InstancePre<ConnData>) -> wasmtime::Result<Self> {
        // The generated indices check that every function of the interface
        // is there; they are not kept.
        RequestIndices::new(pre)?;
        let delivery = DeliveryIndices::new(pre).is_ok();
        let component = pre.component();
        let request = component.get_export_index(None, INTERFACE);
        let delivery_iface = component.get_export_index(None, DELIVERY_INTERFACE);
        let mut index = [None; CALLEES];
        for callee in ALL {
            let iface = match callee {
                Callee::Deliver if delivery => delivery_iface.as_ref(),
                Callee::Deliver => continue,
                _ => request.as_ref(),
            };
            index[callee as usize] = Some(
                component
                    .get_export_index(iface, callee.name())
                    .ok_or_else(|| wasmtime::format_err!("missing export {}", callee.name()))?,
            );
        }
        Ok(Self { index })
    }

    /// Checks on one instance that every function has the parameter and
    /// result types the host calls it with. Every instance of a component has
    /// the same types: this check is what makes [`Exports`]' unchecked
    /// calls sound.
    pub(crate) fn check(
        &self,
        store: &mut Store<ConnData>,
        instance: &Instance,
    ) -> anyhow::Result<()> {
        let mut exports = Exports::new(*instance);
        for callee in ALL {
            if self.index[callee as usize].is_none() {
                continue;
            }
            let func = exports
                .func(self, store, callee)
                .ok_or_else(|| anyhow::anyhow!("{} is not a function", callee.name()))?;
            let checked = match callee {
                Callee::HandleHead => func
                    .typed::<HandleHeadParams<'_>, (HeadResult,)>(&*store)
                    .map(drop),
                Callee::Receive => func
                    .typed::<ReceiveParams<'_>, (Transmit,)>(&*store)
                    .map(drop),
                Callee::Tick | Callee::Disconnected => {
                    func.typed::<NowParams, (Transmit,)>(&*store).map(drop)
                }
                Callee::Close => func
                    .typed::<CloseParams<'_>, (Transmit,)>(&*store)
                    .map(drop),
                Callee::Deliver => func
                    .typed::<DeliverParams<'_>, (Transmit,)>(&*store)
                    .map(drop),
            };
            checked
                .map_err(|e| anyhow::anyhow!("{} has an unexpected type: {e}", callee.name()))?;
        }
        Ok(())
    }

    /// Whether the component exports `delivery`.
    pub(crate) fn has_delivery(&self) -> bool {
        self.index[Callee::Deliver as usize].is_some()
    }
}

/// Every [`Callee`], in order.
const ALL: [Callee; CALLEES] = [
    Callee::HandleHead,
    Callee::Receive,
    Callee::Tick,
    Callee::Close,
    Callee::Disconnected,
    Callee::Deliver,
];

/// One instance's functions, each looked up when first called.
pub(crate) struct Exports {
    instance: Instance,
    found: [Option<Func>; CALLEES],
}

impl Exports {
    /// Nothing looked up yet in `instance`.
    pub(crate) fn new(instance: Instance) -> Self {
        Self {
            instance,
            found: [None; CALLEES],
        }
    }

    /// The instance.
    pub(crate) fn instance(&self) -> Instance {
        self.instance
    }

    /// The functions looked up so far, in [`Callee`] order.
    #[cfg(test)]
    pub(crate) fn looked_up(&self) -> Vec<Callee> {
        ALL.into_iter()
            .filter(|c| self.found[*c as usize].is_some())
            .collect()
    }

    /// `callee` in this instance; `None` when the component does not export
    /// it (only `deliver` can be missing).
    pub(crate) fn func(
        &mut self,
        located: &Located,
        store: &mut Store<ConnData>,
        callee: Callee,
    ) -> Option<Func> {
        let slot = &mut self.found[callee as usize];
        if slot.is_none() {
            let index = located.index[callee as usize].as_ref()?;
            *slot = self.instance.get_func(&mut *store, index);
        }
        *slot
    }
}
