//! What one instance of a component holds — core instances, linear
//! memories, tables — counted from the component's binary, so that the
//! instance pool and each instance's limits fit the components served
//! rather than the shape of the Rust ones.
//!
//! A Rust component (one core module, the WASI adapter, the shims of the
//! canonical ABI) holds a handful of each; a Python handler built with
//! componentize-py holds a dozen core instances of CPython's dynamically
//! linked libraries and tables of tens of thousands of entries, and a
//! composed component adds the protocol component's. The pooling allocator
//! reserves its slots once, when the server starts ([`crate::runtime::Base`]),
//! so the shape of every component served at start sizes it; a component
//! loaded later (a reload) that does not fit is refused with the limit it
//! exceeds.

use std::fmt;

use wasmparser::{
    ComponentAlias, ComponentExternalKind, ComponentInstance, ComponentOuterAliasKind,
    ComponentTypeRef, Encoding, Instance, Parser, Payload,
};

/// The most a single instance of a component holds at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstanceShape {
    /// Core module instances: every `instantiate` of a core module, across
    /// nested components, plus two for each instantiation of a nested
    /// component (room for the adapter modules wasmtime generates for the
    /// calls between components, which the binary does not show).
    pub core_instances: u32,
    /// Linear memories defined by core modules (imported ones are shared,
    /// not new).
    pub memories: u32,
    /// Tables defined by core modules.
    pub tables: u32,
    /// The largest initial size of a defined table, in elements.
    pub table_elements: u64,
    /// The largest initial size of a linear memory, in bytes (`u64::MAX`
    /// when a core module the component does not define itself holds one).
    /// Not a limit: the pool keeps memories this small resident between
    /// instances.
    pub memory_initial: u64,
}

impl InstanceShape {
    /// The least the host sizes for, whatever it serves: room for a Rust
    /// component with some to spare (a composed pair has two memories, so
    /// a server started with one memory per instance refuses to reload
    /// into one).
    pub const FLOOR: Self = Self {
        core_instances: 16,
        memories: 1,
        tables: 8,
        table_elements: 20_000,
        memory_initial: 0,
    };

    /// Counts what an instance of the component `wasm` holds. Fails if the
    /// binary cannot be parsed (compiling it would fail too).
    ///
    /// Memories and tables are counted per instantiation of the core module
    /// that defines them; a core module the component does not define
    /// itself (an alias or an import) is counted as one memory and one table.
    pub fn of(wasm: &[u8]) -> anyhow::Result<Self> {
        let read = |e: wasmparser::BinaryReaderError| anyhow::anyhow!("reading the component: {e}");
        let mut shape = Self {
            core_instances: 0,
            memories: 0,
            tables: 0,
            table_elements: 0,
            memory_initial: 0,
        };
        // The module being read, and for each enclosing component the core
        // modules of its index space, in order (`None`: not defined here).
        let mut module: Option<Defined> = None;
        let mut components: Vec<Vec<Option<Defined>>> = Vec::new();
        // `parse_all` walks nested modules and components too, each from its
        // `Version` to its `End`.
        for payload in Parser::new(0).parse_all(wasm) {
            match payload.map_err(read)? {
                Payload::Version { encoding, .. } => match encoding {
                    Encoding::Module => module = Some(Defined::default()),
                    Encoding::Component => components.push(Vec::new()),
                },
                Payload::End(_) => match module.take() {
                    Some(defined) => {
                        if let Some(modules) = components.last_mut() {
                            modules.push(Some(defined));
                        }
                    }
                    None => {
                        components.pop();
                    }
                },
                Payload::MemorySection(reader) => {
                    for memory in reader {
                        let memory = memory.map_err(read)?;
                        if let Some(defined) = &mut module {
                            defined.memories = defined.memories.saturating_add(1);
                            let page_log2 = memory.page_size_log2.unwrap_or(16);
                            let bytes = memory.initial.checked_shl(page_log2).unwrap_or(u64::MAX);
                            defined.memory_initial = defined.memory_initial.max(bytes);
                        }
                    }
                }
                Payload::TableSection(reader) => {
                    for table in reader {
                        let table = table.map_err(read)?;
                        if let Some(defined) = &mut module {
                            defined.tables = defined.tables.saturating_add(1);
                            defined.table_elements = defined.table_elements.max(table.ty.initial);
                        }
                    }
                }
                Payload::ComponentAliasSection(reader) => {
                    for alias in reader {
                        let module_alias = matches!(
                            alias.map_err(read)?,
                            ComponentAlias::Outer {
                                kind: ComponentOuterAliasKind::CoreModule,
                                ..
                            } | ComponentAlias::InstanceExport {
                                kind: ComponentExternalKind::Module,
                                ..
                            }
                        );
                        if module_alias && let Some(modules) = components.last_mut() {
                            modules.push(None);
                        }
                    }
                }
                Payload::ComponentImportSection(reader) => {
                    for import in reader {
                        if let ComponentTypeRef::Module(_) = import.map_err(read)?.ty
                            && let Some(modules) = components.last_mut()
                        {
                            modules.push(None);
                        }
                    }
                }
                Payload::InstanceSection(reader) => {
                    for instance in reader {
                        let Instance::Instantiate { module_index, .. } = instance.map_err(read)?
                        else {
                            continue;
                        };
                        shape.core_instances = shape.core_instances.saturating_add(1);
                        let defined = components
                            .last()
                            .and_then(|modules| modules.get(module_index as usize))
                            .copied()
                            .flatten()
                            .unwrap_or(Defined::UNKNOWN);
                        shape.memories = shape.memories.saturating_add(defined.memories);
                        shape.tables = shape.tables.saturating_add(defined.tables);
                        shape.table_elements = shape.table_elements.max(defined.table_elements);
                        shape.memory_initial = shape.memory_initial.max(defined.memory_initial);
                    }
                }
                Payload::ComponentInstanceSection(reader) => {
                    for instance in reader {
                        if let ComponentInstance::Instantiate { .. } = instance.map_err(read)? {
                            shape.core_instances = shape.core_instances.saturating_add(2);
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(shape)
    }

    /// The larger of each count: room for instances of either shape.
    #[must_use]
    pub fn max(self, other: Self) -> Self {
        Self {
            core_instances: self.core_instances.max(other.core_instances),
            memories: self.memories.max(other.memories),
            tables: self.tables.max(other.tables),
            table_elements: self.table_elements.max(other.table_elements),
            memory_initial: self.memory_initial.max(other.memory_initial),
        }
    }

    /// The first count of `self` that exceeds `room`, as an error naming
    /// the limit, or `Ok` when it fits.
    pub fn fits(&self, room: &Self) -> Result<(), ShapeError> {
        let checks = [
            (
                "core instances",
                u64::from(self.core_instances),
                u64::from(room.core_instances),
            ),
            (
                "linear memories",
                u64::from(self.memories),
                u64::from(room.memories),
            ),
            ("tables", u64::from(self.tables), u64::from(room.tables)),
            ("table elements", self.table_elements, room.table_elements),
        ];
        match checks.into_iter().find(|(_, need, have)| need > have) {
            Some((limit, need, have)) => Err(ShapeError { limit, need, have }),
            None => Ok(()),
        }
    }
}

/// What one core module defines.
#[derive(Clone, Copy, Debug, Default)]
struct Defined {
    memories: u32,
    tables: u32,
    table_elements: u64,
    /// The largest initial size of its memories, in bytes.
    memory_initial: u64,
}

impl Defined {
    /// A module the component does not define itself.
    const UNKNOWN: Self = Self {
        memories: 1,
        tables: 1,
        table_elements: 0,
        memory_initial: u64::MAX,
    };
}

/// A component needs more of something per instance than the server's
/// instance pool was sized for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeError {
    /// What: `core instances`, `linear memories`, `tables`, `table elements`.
    pub limit: &'static str,
    /// How many one instance of the component needs.
    pub need: u64,
    /// How many the pool has room for per instance.
    pub have: u64,
}

impl fmt::Display for ShapeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "one instance of this component needs {} {}, but the server's instance pool was \
             sized for {} when it started (from the components it served then): restart the \
             server to serve this component",
            self.need, self.limit, self.have
        )
    }
}

impl std::error::Error for ShapeError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn component(wat: &str) -> Vec<u8> {
        wat::parse_str(wat).expect("valid wat")
    }

    #[test]
    fn counts_nested_instances_memories_and_tables() {
        let wasm = component(
            r#"(component
                (core module $a (memory (export "mem") 1) (table 30000 funcref) (table 2 funcref))
                (core module $b (import "a" "m" (memory 1)) (memory 2))
                (core instance $ia (instantiate $a))
                (core instance $ia2 (instantiate $a))
                (core instance $bag (export "m" (memory $ia "mem")))
                (core instance $ib (instantiate $b (with "a" (instance $bag))))
                (component $inner
                    (core module $c (table 1 funcref))
                    (core instance (instantiate $c)))
                (instance (instantiate $inner)))"#,
        );
        let shape = InstanceShape::of(&wasm).expect("parses");
        // Four instantiations (the `with` bag is not one), and room for
        // the adapters of the nested component's instance.
        assert_eq!(shape.core_instances, 4 + 2);
        // Per instantiation: $a twice, $b's own memory (not the imported
        // one), $c's table.
        assert_eq!(shape.memories, 2 + 1);
        assert_eq!(shape.tables, 2 * 2 + 1);
        assert_eq!(shape.table_elements, 30_000);
        // $b's own memory (2 pages) is the largest; the imported one is $a's.
        assert_eq!(shape.memory_initial, 2 << 16);
    }

    #[test]
    fn a_memory_of_a_module_not_defined_here_counts_as_unbounded() {
        let wasm = component(
            r#"(component
                (import "m" (core module $m))
                (core instance (instantiate $m)))"#,
        );
        let shape = InstanceShape::of(&wasm).expect("parses");
        assert_eq!(shape.memories, 1);
        assert_eq!(shape.memory_initial, u64::MAX);
    }

    #[test]
    fn names_the_first_limit_exceeded() {
        let big = InstanceShape {
            core_instances: 40,
            ..InstanceShape::FLOOR
        };
        assert_eq!(InstanceShape::FLOOR.fits(&big), Ok(()));
        let err = big.fits(&InstanceShape::FLOOR).expect_err("too many");
        assert_eq!((err.limit, err.need, err.have), ("core instances", 40, 16));
        assert!(err.to_string().contains("needs 40 core instances"), "{err}");
        assert_eq!(big.max(InstanceShape::FLOOR), big);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(InstanceShape::of(b"\0asm\x0d\0\x01\0\xff\xff").is_err());
        assert!(InstanceShape::of(b"not wasm at all").is_err());
    }
}
