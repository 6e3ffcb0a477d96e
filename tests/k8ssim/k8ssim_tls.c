/*
 * k8ssim: the GnuTLS calls libmicrohttpd does not make for us.
 *
 * libmicrohttpd requests a client certificate when given a trust list
 * (MHD_OPTION_HTTPS_MEM_TRUST) but leaves verifying it to the application,
 * and the build links libmicrohttpd without -lgnutls. The few GnuTLS
 * functions needed are looked up at run time in the copy libmicrohttpd
 * already loaded; their types come from the GnuTLS headers, so a mismatch
 * still fails to compile.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "k8ssim_internal.h"

static struct {
    __typeof__(gnutls_certificate_verify_peers2) *verify_peers2;
    __typeof__(gnutls_certificate_get_peers) *get_peers;
    __typeof__(gnutls_x509_crt_init) *crt_init;
    __typeof__(gnutls_x509_crt_import) *crt_import;
    __typeof__(gnutls_x509_crt_get_dn_by_oid) *crt_get_dn_by_oid;
    __typeof__(gnutls_x509_crt_deinit) *crt_deinit;
    __typeof__(gnutls_record_send) *record_send;
    bool ok;
} gnutls;

static pthread_once_t gnutls_once = PTHREAD_ONCE_INIT;

static void gnutls_lookup(void)
{
    gnutls.verify_peers2 = (__typeof__(gnutls.verify_peers2))dlsym(
        RTLD_DEFAULT, "gnutls_certificate_verify_peers2");
    gnutls.get_peers =
        (__typeof__(gnutls.get_peers))dlsym(RTLD_DEFAULT, "gnutls_certificate_get_peers");
    gnutls.crt_init = (__typeof__(gnutls.crt_init))dlsym(RTLD_DEFAULT, "gnutls_x509_crt_init");
    gnutls.crt_import =
        (__typeof__(gnutls.crt_import))dlsym(RTLD_DEFAULT, "gnutls_x509_crt_import");
    gnutls.crt_get_dn_by_oid = (__typeof__(gnutls.crt_get_dn_by_oid))dlsym(
        RTLD_DEFAULT, "gnutls_x509_crt_get_dn_by_oid");
    gnutls.crt_deinit =
        (__typeof__(gnutls.crt_deinit))dlsym(RTLD_DEFAULT, "gnutls_x509_crt_deinit");
    gnutls.record_send = (__typeof__(gnutls.record_send))dlsym(RTLD_DEFAULT, "gnutls_record_send");
    gnutls.ok = gnutls.verify_peers2 && gnutls.get_peers && gnutls.crt_init && gnutls.crt_import &&
                gnutls.crt_get_dn_by_oid && gnutls.crt_deinit && gnutls.record_send;
}

static gnutls_session_t session_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    return info ? (gnutls_session_t)info->tls_session : NULL;
}

char *k8ssim_tls_client_cn(struct MHD_Connection *conn)
{
    gnutls_session_t session;
    gnutls_x509_crt_t crt = NULL;
    unsigned int status = 0, count = 0;
    char cn[256];
    size_t cn_len = sizeof(cn);
    char *result = NULL;

    pthread_once(&gnutls_once, gnutls_lookup);
    if (!gnutls.ok || !(session = session_of(conn)))
        return NULL;
    const gnutls_datum_t *peers = gnutls.get_peers(session, &count);
    if (!peers || count == 0)
        return NULL;
    /* Checks the chain against the trust list, validity dates and usage. */
    if (gnutls.verify_peers2(session, &status) < 0 || status != 0)
        return NULL;
    if (gnutls.crt_init(&crt) < 0)
        return NULL;
    if (gnutls.crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER) >= 0 &&
        gnutls.crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &cn_len) >= 0)
        result = strndup(cn, cn_len);
    gnutls.crt_deinit(crt);
    return result;
}

int k8ssim_tls_raw_write(struct MHD_Connection *conn, bool tls, const char *data, size_t len)
{
    if (tls) {
        gnutls_session_t session;
        pthread_once(&gnutls_once, gnutls_lookup);
        if (!gnutls.ok || !(session = session_of(conn)))
            return -ENOTSUP;
        return gnutls.record_send(session, data, len) == (ssize_t)len ? 0 : -EIO;
    }
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!info)
        return -ENOTSUP;
    return send(info->connect_fd, data, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -EIO;
}
