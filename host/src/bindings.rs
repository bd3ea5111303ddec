//! The contract as the host sees it: the generated bindings of world
//! `websocket-pubsub-server` (`websocket-request`, the optional `delivery`
//! export and the `pubsub` import; a production host never calls
//! `preview`), and the host's own lifted form of `handle-head`'s result.

use std::net::{IpAddr, SocketAddr};

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "websocket-pubsub-server",
    });
}

pub(crate) use generated::exports::ws_edge::websocket::delivery::GuestIndices as DeliveryIndices;
pub(crate) use generated::exports::ws_edge::websocket::websocket_request::{
    ConnectionState, Ending, GuestIndices as RequestIndices, Timer, Transmit, Transport,
};
pub(crate) use generated::ws_edge::websocket::pubsub;
pub(crate) use generated::ws_edge::websocket::types::{IpAddress, Message, SocketAddress};
pub(crate) use lifted::HeadResult;

/// Types only the unit tests use (`handle-request`).
#[cfg(test)]
pub(crate) mod tests_only {
    pub(crate) use super::generated::exports::ws_edge::websocket::websocket_request::{
        Handshake, Header, HttpVersion, Request,
    };
}

/// The full name of the interface the host calls, for error messages.
pub(crate) const INTERFACE: &str = "ws-edge:websocket/websocket-request@0.2.0";

/// The full name of the optional export for `handler` deliveries.
pub(crate) const DELIVERY_INTERFACE: &str = "ws-edge:websocket/delivery@0.2.0";

/// The parameters of `handle-head`.
pub(crate) type HandleHeadParams<'a> = (&'a [u8], &'a Transport, u64);

/// The WIT form of a socket address.
pub(crate) fn socket_address(addr: SocketAddr) -> SocketAddress {
    let address = match addr.ip() {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            IpAddress::Ipv4((a, b, c, d))
        }
        IpAddr::V6(v6) => {
            let [a, b, c, d, e, f, g, h] = v6.segments();
            IpAddress::Ipv6((a, b, c, d, e, f, g, h))
        }
    };
    SocketAddress {
        address,
        port: addr.port(),
    }
}

/// The result of `handle-head`, lifted with only what a socket host uses
/// copied out of the guest: the status, `wire`, `consumed` and the
/// connection. The reason phrase, the structured headers and the body are
/// bounds-checked by wasmtime but not copied (`WasmStr` / `WasmList`), which
/// saves a host allocation per header field.
///
/// The types mirror the WIT records field for field; a mismatch is caught
/// by the type check in [`Runtime::new`](crate::runtime::Runtime::new), at
/// start-up.
pub(crate) mod lifted {
    use wasmtime::component::{ComponentType, Lift, ResourceAny, WasmList, WasmStr};

    /// `head-result`.
    #[derive(ComponentType, Lift)]
    #[component(variant)]
    #[expect(
        clippy::large_enum_variant,
        reason = "returned once per connection, straight from the lift"
    )]
    pub enum HeadResult {
        /// `incomplete`: no complete head yet.
        #[component(name = "incomplete")]
        Incomplete,
        /// `complete`: the head was answered.
        #[component(name = "complete")]
        Complete(HeadHandshake),
    }

    /// `head-handshake`.
    #[derive(ComponentType, Lift)]
    #[component(record)]
    pub struct HeadHandshake {
        /// Bytes of the input the head occupied.
        pub consumed: u32,
        /// The response and the connection.
        pub handshake: Handshake,
    }

    /// `handshake`.
    #[derive(ComponentType, Lift)]
    #[component(record)]
    pub struct Handshake {
        /// The response to write.
        pub response: Response,
        /// The connection, if accepted.
        pub connection: Option<ResourceAny>,
    }

    /// `response`: `status` and `wire` copied, the rest left in the guest.
    #[derive(ComponentType, Lift)]
    #[component(record)]
    #[expect(
        dead_code,
        reason = "the fields the host does not use exist for the type check"
    )]
    pub struct Response {
        /// The status code.
        pub status: u16,
        /// The reason phrase (not copied).
        pub reason: WasmStr,
        /// The structured header fields (not copied).
        pub headers: WasmList<Header>,
        /// The body (not copied; it is part of `wire`).
        pub body: WasmList<u8>,
        /// The serialized response, written to the socket verbatim.
        pub wire: Vec<u8>,
    }

    /// `header` (never copied: only the list's bounds are checked).
    #[derive(ComponentType, Lift)]
    #[component(record)]
    #[expect(dead_code, reason = "exists for the type check of `response`")]
    pub struct Header {
        /// The field name.
        pub name: WasmStr,
        /// The field value.
        pub value: WasmList<u8>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses_keep_every_part() {
        let v4 = socket_address("203.0.113.7:51234".parse().expect("address"));
        assert!(matches!(v4.address, IpAddress::Ipv4((203, 0, 113, 7))));
        assert_eq!(v4.port, 51234);
        let v6 = socket_address("[2001:db8::1]:443".parse().expect("address"));
        assert!(matches!(
            v6.address,
            IpAddress::Ipv6((0x2001, 0xdb8, 0, 0, 0, 0, 0, 1))
        ));
        assert_eq!(v6.port, 443);
    }
}
