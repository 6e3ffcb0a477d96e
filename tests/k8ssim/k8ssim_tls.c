/*
 * k8ssim: the GnuTLS calls libmicrohttpd does not make for us.
 *
 * libmicrohttpd requests a client certificate when given a trust list
 * (MHD_OPTION_HTTPS_MEM_TRUST) but leaves verifying it to the application:
 * these calls work on the GnuTLS session it exposes.
 */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "k8ssim_internal.h"

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

    if (!(session = session_of(conn)))
        return NULL;
    const gnutls_datum_t *peers = gnutls_certificate_get_peers(session, &count);
    if (!peers || count == 0)
        return NULL;
    /* Checks the chain against the trust list, validity dates and usage. */
    if (gnutls_certificate_verify_peers2(session, &status) < 0 || status != 0)
        return NULL;
    if (gnutls_x509_crt_init(&crt) < 0)
        return NULL;
    if (gnutls_x509_crt_import(crt, &peers[0], GNUTLS_X509_FMT_DER) >= 0 &&
        gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &cn_len) >= 0)
        result = strndup(cn, cn_len);
    gnutls_x509_crt_deinit(crt);
    return result;
}

int k8ssim_tls_raw_write(struct MHD_Connection *conn, bool tls, const char *data, size_t len)
{
    if (tls) {
        gnutls_session_t session;
        if (!(session = session_of(conn)))
            return -ENOTSUP;
        return gnutls_record_send(session, data, len) == (ssize_t)len ? 0 : -EIO;
    }
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!info)
        return -ENOTSUP;
    return send(info->connect_fd, data, len, MSG_NOSIGNAL) == (ssize_t)len ? 0 : -EIO;
}
