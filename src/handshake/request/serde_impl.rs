//! A JSON-friendly dump of the request model (feature `serde`).

use serde::ser::{Serialize, SerializeMap, SerializeSeq, SerializeStruct, Serializer};

use super::super::extensions::ExtensionOffer;
use super::Request;

struct Seq<I>(std::cell::RefCell<Option<I>>);

impl<I> Serialize for Seq<I>
where
    I: Iterator,
    I::Item: Serialize,
{
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let iter = self.0.borrow_mut().take();
        let mut seq = s.serialize_seq(None)?;
        for item in iter.into_iter().flatten() {
            seq.serialize_element(&item)?;
        }
        seq.end()
    }
}

fn seq<I: Iterator>(iter: I) -> Seq<I> {
    Seq(std::cell::RefCell::new(Some(iter)))
}

impl Serialize for ExtensionOffer<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("ExtensionOffer", 2)?;
        st.serialize_field("name", self.name())?;
        st.serialize_field("params", &seq(self.params()))?;
        st.end()
    }
}

struct HeaderMapView<'a>(&'a Request);

impl Serialize for HeaderMapView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.headers().len()))?;
        for h in self.0.headers() {
            seq.serialize_element(&(h.name, String::from_utf8_lossy(h.value)))?;
        }
        seq.end()
    }
}

struct Query<'a>(super::ResourceUrl<'a>);

impl Serialize for Query<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (k, v) in self.0.query_pairs() {
            map.serialize_entry(&k, &v)?;
        }
        map.end()
    }
}

/// A JSON-friendly dump of everything a handler can read.
impl Serialize for Request {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let url = self.resource_url();
        let mut st = s.serialize_struct("Request", 16)?;
        st.serialize_field("method", self.method())?;
        st.serialize_field("http_version", &self.http_version)?;
        st.serialize_field("resource", self.resource())?;
        st.serialize_field("path", url.path())?;
        st.serialize_field("query", &Query(url))?;
        st.serialize_field("host", self.host())?;
        st.serialize_field("websocket_version", &self.ws_version)?;
        st.serialize_field("key", self.key())?;
        st.serialize_field("origin", &self.origin())?;
        st.serialize_field("requested_protocols", &seq(self.requested_protocols()))?;
        st.serialize_field("requested_extensions", &seq(self.requested_extensions()))?;
        st.serialize_field("cookies", &seq(self.cookies()))?;
        st.serialize_field("remote_address", &self.remote_address())?;
        st.serialize_field("remote_addresses", self.remote_addresses())?;
        st.serialize_field("transport", &self.transport)?;
        st.serialize_field("headers", &HeaderMapView(self))?;
        st.end()
    }
}
