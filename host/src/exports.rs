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
use crate::metrics::Export;
use crate::runtime::ConnData;

/// Slots for every [`Export`], indexed by `export as usize` (`drop` is
/// never looked up: it is a resource destructor, not an export).
const SLOTS: usize = Export::ALL.len();

/// The export's name inside its interface, for the exports the host looks
/// up (all but `drop`).
fn export_name(export: Export) -> Option<&'static str> {
    Some(match export {
        Export::HandleHead => "handle-head",
        Export::Receive => "[method]connection.receive",
        Export::Tick => "[method]connection.tick",
        Export::Close => "[method]connection.close",
        Export::Disconnected => "[method]connection.disconnected",
        Export::Deliver => "deliver",
        Export::Drop => return None,
    })
}

/// Parameters of `connection.receive`.
pub(crate) type ReceiveParams<'a> = (ResourceAny, &'a [u8], u64);
/// Parameters of `connection.tick` and `connection.disconnected`.
pub(crate) type NowParams = (ResourceAny, u64);
/// Parameters of `connection.close`.
pub(crate) type CloseParams<'a> = (ResourceAny, u16, &'a str, u64);
/// Parameters of `delivery.deliver`.
pub(crate) type DeliverParams<'a> = (ResourceAny, &'a str, &'a Message, u64);

/// Where each looked-up [`Export`] is in one component, found when it is compiled.
pub(crate) struct Located {
    index: [Option<ComponentExportIndex>; SLOTS],
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
        let mut index = [None; SLOTS];
        for export in Export::ALL {
            let Some(name) = export_name(export) else {
                continue;
            };
            let iface = match export {
                Export::Deliver if delivery => delivery_iface.as_ref(),
                Export::Deliver => continue,
                _ => request.as_ref(),
            };
            index[export as usize] = Some(
                component
                    .get_export_index(iface, name)
                    .ok_or_else(|| wasmtime::format_err!("missing export {name}"))?,
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
        for export in Export::ALL {
            let Some(name) = export_name(export).filter(|_| self.index[export as usize].is_some())
            else {
                continue;
            };
            let func = exports
                .func(self, store, export)
                .ok_or_else(|| anyhow::anyhow!("{name} is not a function"))?;
            let checked = match export {
                Export::Drop => continue,
                Export::HandleHead => func
                    .typed::<HandleHeadParams<'_>, (HeadResult,)>(&*store)
                    .map(drop),
                Export::Receive => func
                    .typed::<ReceiveParams<'_>, (Transmit,)>(&*store)
                    .map(drop),
                Export::Tick | Export::Disconnected => {
                    func.typed::<NowParams, (Transmit,)>(&*store).map(drop)
                }
                Export::Close => func
                    .typed::<CloseParams<'_>, (Transmit,)>(&*store)
                    .map(drop),
                Export::Deliver => func
                    .typed::<DeliverParams<'_>, (Transmit,)>(&*store)
                    .map(drop),
            };
            checked.map_err(|e| anyhow::anyhow!("{name} has an unexpected type: {e}"))?;
        }
        Ok(())
    }

    /// Whether the component exports `delivery`.
    pub(crate) fn has_delivery(&self) -> bool {
        self.index[Export::Deliver as usize].is_some()
    }
}

/// One instance's functions, each looked up when first called.
pub(crate) struct Exports {
    instance: Instance,
    found: [Option<Func>; SLOTS],
}

impl Exports {
    /// Nothing looked up yet in `instance`.
    pub(crate) fn new(instance: Instance) -> Self {
        Self {
            instance,
            found: [None; SLOTS],
        }
    }

    /// The instance.
    pub(crate) fn instance(&self) -> Instance {
        self.instance
    }

    /// The functions looked up so far, in [`Export`] order.
    #[cfg(test)]
    pub(crate) fn looked_up(&self) -> Vec<Export> {
        Export::ALL
            .into_iter()
            .filter(|c| self.found[*c as usize].is_some())
            .collect()
    }

    /// `export` in this instance; `None` when the component does not export
    /// it (only `deliver` can be missing).
    pub(crate) fn func(
        &mut self,
        located: &Located,
        store: &mut Store<ConnData>,
        export: Export,
    ) -> Option<Func> {
        let slot = &mut self.found[export as usize];
        if slot.is_none() {
            let index = located.index[export as usize].as_ref()?;
            *slot = self.instance.get_func(&mut *store, index);
        }
        *slot
    }
}
