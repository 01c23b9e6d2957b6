// Sandbox: a self-signed certificate for testing clients' TLS path.

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "sandbox_impl.hpp"

namespace sluice::sandbox {
namespace {

// Long enough for any test run, short enough that a leaked key is useless.
constexpr long kValiditySeconds = 30L * 24 * 60 * 60;

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* pointer) const { Free(pointer); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using CertificatePtr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using ExtensionPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;

void check(bool ok, char const* step) {
  if (!ok) {
    throw std::runtime_error(std::string("creating the self-signed certificate failed at ") + step);
  }
}

std::string bio_text(BIO* bio) {
  char* data = nullptr;
  auto size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(size));
}

}  // namespace

std::pair<std::string, std::string> make_self_signed_certificate() {
  KeyPtr key(EVP_EC_gen("P-256"));
  check(key != nullptr, "EVP_EC_gen");

  CertificatePtr certificate(X509_new());
  check(certificate != nullptr, "X509_new");
  check(X509_set_version(certificate.get(), 2) == 1, "X509_set_version");
  check(ASN1_INTEGER_set(X509_get_serialNumber(certificate.get()), 1) == 1, "serial number");
  check(X509_gmtime_adj(X509_getm_notBefore(certificate.get()), -60) != nullptr, "notBefore");
  check(X509_gmtime_adj(X509_getm_notAfter(certificate.get()), kValiditySeconds) != nullptr, "notAfter");
  check(X509_set_pubkey(certificate.get(), key.get()) == 1, "X509_set_pubkey");

  auto* name = X509_get_subject_name(certificate.get());
  auto const* common_name = reinterpret_cast<unsigned char const*>("localhost");
  check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, common_name, -1, -1, 0) == 1, "subject name");
  check(X509_set_issuer_name(certificate.get(), name) == 1, "issuer name");

  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, certificate.get(), certificate.get(), nullptr, nullptr, 0);
  ExtensionPtr alt_names(
      X509V3_EXT_conf_nid(nullptr, &context, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1"));
  check(alt_names != nullptr, "subjectAltName");
  check(X509_add_ext(certificate.get(), alt_names.get(), -1) == 1, "X509_add_ext");
  ExtensionPtr constraints(X509V3_EXT_conf_nid(nullptr, &context, NID_basic_constraints, "critical,CA:TRUE"));
  check(constraints != nullptr, "basicConstraints");
  check(X509_add_ext(certificate.get(), constraints.get(), -1) == 1, "X509_add_ext");
  check(X509_sign(certificate.get(), key.get(), EVP_sha256()) > 0, "X509_sign");

  BioPtr certificate_pem(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_X509(certificate_pem.get(), certificate.get()) == 1, "PEM_write_bio_X509");
  BioPtr key_pem(BIO_new(BIO_s_mem()));
  check(PEM_write_bio_PrivateKey(key_pem.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "PEM_write_bio_PrivateKey");
  return {bio_text(certificate_pem.get()), bio_text(key_pem.get())};
}

}  // namespace sluice::sandbox
