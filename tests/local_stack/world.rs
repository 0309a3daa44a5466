//! The one fixture of the local-stack tests: a stack with schools registered and their data
//! uploaded, partners registered, consents granted and tokens fetched, all through the same
//! HTTP calls a school and a partner make. Each test says what its world holds:
//!
//! ```ignore
//! let world = World::build(ESTAB)
//!     .data(synthetic::school(ESTAB, 8, 3).upload_body())
//!     .partner(PARTNER, &["Student", "Contact"])
//!     .grant(ESTAB, PARTNER, &["Student"])
//!     .start()
//!     .await;
//! ```
//!
//! The first school is the world's `school`, the first partner its `partner`, and that
//! partner's token at that school (if granted) its `token`; the others are looked up by name.

use std::collections::BTreeMap;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Answer, SchoolKeys, Stack};

pub struct World {
    pub stack: Stack,
    /// The first school's establishment number, keys and the body uploaded to it.
    pub estab: String,
    pub school: SchoolKeys,
    pub uploaded: Value,
    /// The first partner, its management secret, and its token at the first school (empty
    /// when that school did not grant it).
    pub partner: String,
    pub management: String,
    pub token: String,
    schools: BTreeMap<String, SchoolKeys>,
    tokens: BTreeMap<(String, String), String>,
}

/// What a [`World`] is to hold, in the order it is set up: schools (with their uploads),
/// partners, then grants.
pub struct Build {
    schools: Vec<(String, Option<Value>)>,
    partners: Vec<(String, Vec<String>)>,
    grants: Vec<(String, String, Vec<String>)>,
}

fn owned(scopes: &[&str]) -> Vec<String> {
    scopes.iter().map(|s| s.to_string()).collect()
}

impl World {
    /// A world whose first school is `estab`.
    pub fn build(estab: &str) -> Build {
        Build {
            schools: vec![(estab.to_owned(), None)],
            partners: Vec::new(),
            grants: Vec::new(),
        }
    }

    pub fn school_of(&self, estab: &str) -> &SchoolKeys {
        &self.schools[estab]
    }

    /// `partner`'s token at `estab`, fetched when the world was built.
    pub fn token_of(&self, partner: &str, estab: &str) -> &str {
        &self.tokens[&(partner.to_owned(), estab.to_owned())]
    }

    /// A fresh token of the first partner at the first school (tokens last an hour; some
    /// tests move the clock further).
    pub async fn new_token(&self) -> String {
        self.stack
            .token(&self.partner, &self.management, &self.estab)
            .await
    }

    /// The values of `field` in every row of the uploaded result set `set`.
    pub fn uploaded_values(&self, set: &str, field: &str) -> Vec<String> {
        self.uploaded["resultSets"][set]
            .as_array()
            .unwrap_or_else(|| panic!("the world uploaded no {set}"))
            .iter()
            .map(|row| match &row[field] {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            })
            .collect()
    }

    /// The ids of the pupils uploaded to the first school.
    pub fn pupils(&self) -> Vec<String> {
        self.uploaded_values("Students", "Id")
    }

    /// Today's date on the stack's clock, as XoD writes dates (`YYYY-MM-DD`).
    pub fn today(&self) -> String {
        self.stack.clock_now().to_xod()[..10].to_owned()
    }

    /// A partner call at the first school with the world's token: `path` after
    /// `/api/v1/School/{estab}/`.
    pub async fn get(&self, path: &str) -> Answer {
        self.stack
            .read(
                &self.token,
                &format!("/api/v1/School/{}/{path}", self.estab),
            )
            .await
    }

    /// The rows of result set `set` that `token` reads at `path` of the first school.
    pub async fn rows(&self, token: &str, path: &str, set: &str) -> Vec<Value> {
        let body = self
            .stack
            .read(token, &format!("/api/v1/School/{}/{path}", self.estab))
            .await
            .expect(StatusCode::OK);
        body[set].as_array().unwrap().clone()
    }

    /// A partner POST (a write-back) with the world's token.
    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.stack
            .send(
                Method::POST,
                path,
                Some(&format!("Idaas {}", self.token)),
                Some(body.to_string().into_bytes()),
            )
            .await
    }

    /// A call of the first school's agent.
    pub async fn agent(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        self.stack
            .send(
                method,
                path,
                Some(&format!("Bearer {}", self.school.agent)),
                body.map(|b| b.to_string().into_bytes()),
            )
            .await
    }

    /// The first school replaces its opt-outs for `partner`.
    pub async fn put_opt_outs(&self, partner: &str, body: Value) -> Answer {
        self.stack
            .send(
                Method::PUT,
                &format!("/admin/v1/opt-outs/{partner}"),
                Some(&format!("Bearer {}", self.school.admin)),
                Some(body.to_string().into_bytes()),
            )
            .await
    }

    /// The first school replaces its opt-outs for the first partner.
    pub async fn opt_out(&self, body: Value) {
        self.put_opt_outs(&self.partner, body)
            .await
            .expect(StatusCode::OK);
    }
}

impl Build {
    /// What the first school uploads (a full `{"resultSets": ...}` body).
    pub fn data(mut self, body: Value) -> Self {
        self.schools[0].1 = Some(body);
        self
    }

    /// Another school, with what it uploads if anything.
    pub fn school(mut self, estab: &str, body: Option<Value>) -> Self {
        self.schools.push((estab.to_owned(), body));
        self
    }

    /// A partner asking for `scopes`.
    pub fn partner(mut self, id: &str, scopes: &[&str]) -> Self {
        self.partners.push((id.to_owned(), owned(scopes)));
        self
    }

    /// `estab` grants `partner` exactly `scopes`; the partner then gets a token there.
    pub fn grant(mut self, estab: &str, partner: &str, scopes: &[&str]) -> Self {
        self.grants
            .push((estab.to_owned(), partner.to_owned(), owned(scopes)));
        self
    }

    /// The world on the embedded store.
    pub async fn start(self) -> World {
        self.on(Stack::start().await).await
    }

    /// The world on `stack` (the AWS adapters, say). Every upload must be stored whole: a
    /// field rollcall ignores means a field name in the test is wrong.
    pub async fn on(self, stack: Stack) -> World {
        let mut schools = BTreeMap::new();
        for (estab, body) in &self.schools {
            let keys = stack.school(estab).await;
            if let Some(body) = body {
                let answer = stack.upload(&keys.agent, body).await.expect(StatusCode::OK);
                assert_eq!(
                    answer["ignored"],
                    json!({}),
                    "a field name in the test is wrong"
                );
            }
            schools.insert(estab.clone(), keys);
        }
        let mut managements = BTreeMap::new();
        for (id, scopes) in &self.partners {
            let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
            managements.insert(id.clone(), stack.partner(id, &scopes).await);
        }
        let mut tokens = BTreeMap::new();
        for (estab, partner, scopes) in &self.grants {
            let scopes: Vec<&str> = scopes.iter().map(String::as_str).collect();
            stack
                .grant(&schools[estab], partner, &scopes)
                .await
                .expect(StatusCode::OK);
            let token = stack.token(partner, &managements[partner], estab).await;
            tokens.insert((partner.clone(), estab.clone()), token);
        }
        let (estab, uploaded) = self.schools.into_iter().next().expect("a first school");
        let partner = self
            .partners
            .first()
            .map(|(id, _)| id.clone())
            .unwrap_or_default();
        World {
            school: schools[&estab].clone(),
            uploaded: uploaded.unwrap_or(Value::Null),
            management: managements.get(&partner).cloned().unwrap_or_default(),
            token: tokens
                .get(&(partner.clone(), estab.clone()))
                .cloned()
                .unwrap_or_default(),
            stack,
            estab,
            partner,
            schools,
            tokens,
        }
    }
}
