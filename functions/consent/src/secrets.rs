//! Per-school partner secrets (GetToken's `password`): issued when a school grants a partner,
//! kept as a hash for checking and sealed under the key service so the partner management API
//! can show it to the partner again.

use rollcall_core::envelope::{self, KeyContext};
use rollcall_core::model::{Estab, PartnerId};
use rollcall_core::ports::{DataKeyGenerator, DataKeyUnwrapper};
use rollcall_core::secret::{KeyHash, SecretKind, new_secret};
use rollcall_http::{ApiError, ApiResult};
use secrecy::{ExposeSecret, SecretString};

/// The key-service context of a school's partner secrets.
fn context(estab: &Estab) -> KeyContext {
    KeyContext::new(estab, "PartnerSecrets")
}

fn aad(estab: &Estab, partner: &PartnerId, generation: u64) -> Vec<u8> {
    format!("rollcall-partner-secret|{estab}|{partner}|{generation}").into_bytes()
}

pub struct IssuedSecret {
    pub hash: KeyHash,
    pub sealed: Vec<u8>,
}

pub async fn issue(
    keys: &dyn DataKeyGenerator,
    estab: &Estab,
    partner: &PartnerId,
    generation: u64,
) -> ApiResult<IssuedSecret> {
    let secret = new_secret(SecretKind::SchoolSecret);
    let key = keys.generate(&context(estab)).await?;
    let sealed = envelope::seal(
        &key.plaintext,
        &key.wrapped,
        &aad(estab, partner, generation),
        secret.expose_secret().as_bytes(),
    );
    Ok(IssuedSecret {
        hash: KeyHash::of_secret(&secret),
        sealed,
    })
}

pub async fn reveal(
    keys: &dyn DataKeyUnwrapper,
    estab: &Estab,
    partner: &PartnerId,
    generation: u64,
    sealed: &[u8],
) -> ApiResult<SecretString> {
    let wrapped = envelope::wrapped_key(sealed).map_err(ApiError::internal)?;
    let key = keys.unwrap(&context(estab), wrapped).await?;
    let plain = envelope::open(&key, &aad(estab, partner, generation), sealed)
        .map_err(ApiError::internal)?;
    let text = String::from_utf8(plain).map_err(ApiError::internal)?;
    Ok(SecretString::from(text))
}
