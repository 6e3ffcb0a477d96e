/*
 * VIP address management for VsVip objects, standing in for the controller's
 * internal IPAM: vips asking for auto_allocate_ip without an address get the
 * lowest free address of the static ranges of their network
 * (ipam_network_subnet.network_ref, else the seeded VIP network).
 *
 * Every IPv4 vip address of every stored vsvip is counted in st->ips, so
 * preferred (client-chosen) addresses also block allocation. A vsvip keeps
 * its address across PUTs; the controller refuses to move it (AKO then
 * deletes and recreates the vsvip).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

#define SCAN_LIMIT (1u << 20) /* addresses examined per allocation, bounds huge ranges */

static const char *vip_addr(const json_t *vip)
{
    return json_string_value(json_object_get(json_object_get(vip, "ip_address"), "addr"));
}

static bool ip_in_use(const struct avisim_store *st, uint32_t addr)
{
    struct avisim_ip_use *u = NULL;
    HASH_FIND(hh, st->ips, &addr, sizeof(addr), u);
    return u != NULL;
}

static int ip_reserve(struct avisim_store *st, uint32_t addr)
{
    struct avisim_ip_use *u = NULL;
    HASH_FIND(hh, st->ips, &addr, sizeof(addr), u);
    if (!u) {
        u = calloc(1, sizeof(*u));
        if (!u)
            return -1;
        u->addr = addr;
        HASH_ADD(hh, st->ips, addr, sizeof(u->addr), u);
    }
    u->count++;
    return 0;
}

static void ip_release(struct avisim_store *st, uint32_t addr)
{
    struct avisim_ip_use *u = NULL;
    HASH_FIND(hh, st->ips, &addr, sizeof(addr), u);
    if (u && --u->count == 0) {
        HASH_DEL(st->ips, u);
        free(u);
    }
}

static void reserve_body(struct avisim_store *st, const json_t *body)
{
    size_t i;
    json_t *vip;
    json_array_foreach(json_object_get(body, "vip"), i, vip)
    {
        uint32_t a;
        if (avisim_ipv4_parse(vip_addr(vip), &a) == 0)
            ip_reserve(st, a);
    }
}

void avisim_vip_release(struct avisim_store *st, const json_t *body)
{
    size_t i;
    json_t *vip;
    json_array_foreach(json_object_get(body, "vip"), i, vip)
    {
        uint32_t a;
        if (avisim_ipv4_parse(vip_addr(vip), &a) == 0)
            ip_release(st, a);
    }
}

static bool range_usable(const json_t *r)
{
    const char *type = json_string_value(json_object_get(r, "type"));
    return !type || strcmp(type, "STATIC_IPS_FOR_VIP_AND_SE") == 0 ||
           strcmp(type, "STATIC_IPS_FOR_VIP") == 0;
}

/* Lowest free address in the network's VIP ranges; -1 when none is left. */
static int find_free(const struct avisim_store *st, const struct avisim_obj *net, uint32_t *out)
{
    uint32_t scanned = 0;
    size_t i, j;
    json_t *subnet, *r;
    json_array_foreach(json_object_get(net->body, "configured_subnets"), i, subnet)
    {
        json_array_foreach(json_object_get(subnet, "static_ip_ranges"), j, r)
        {
            json_t *range = json_object_get(r, "range");
            uint32_t begin, end;
            const char *b = json_string_value(
                json_object_get(json_object_get(range, "begin"), "addr"));
            const char *e = json_string_value(json_object_get(json_object_get(range, "end"), "addr"));
            if (!range_usable(r) || avisim_ipv4_parse(b, &begin) || avisim_ipv4_parse(e, &end))
                continue;
            for (uint64_t a = begin; a <= end && scanned < SCAN_LIMIT; a++, scanned++) {
                if (!ip_in_use(st, (uint32_t)a)) {
                    *out = (uint32_t)a;
                    return 0;
                }
            }
        }
    }
    return -1;
}

static const struct avisim_obj *vip_network(const struct avisim_store *st, const json_t *vip)
{
    const char *ref = json_string_value(
        json_object_get(json_object_get(vip, "ipam_network_subnet"), "network_ref"));
    const struct avisim_obj *net = ref ? avisim_store_ref_target(st, ref) : NULL;
    return net && net->type == AVISIM_T_NETWORK ? net : st->vip_network;
}

/* Refuses moving an existing vip, and carries its address over when the new
 * body leaves it out (a client re-sending auto_allocate_ip must keep its IP). */
static int check_changes(const json_t *old_vips, json_t *new_vips, char *err, size_t errlen)
{
    size_t n = json_array_size(old_vips) < json_array_size(new_vips) ? json_array_size(old_vips)
                                                                      : json_array_size(new_vips);
    for (size_t i = 0; i < n; i++) {
        const json_t *ov = json_array_get(old_vips, i);
        json_t *nv = json_array_get(new_vips, i);
        const char *oid = json_string_value(json_object_get(ov, "vip_id"));
        const char *nid = json_string_value(json_object_get(nv, "vip_id"));
        const char *oa = vip_addr(ov), *na = vip_addr(nv);
        if ((oid && nid && strcmp(oid, nid) != 0) || (oa && na && strcmp(oa, na) != 0)) {
            snprintf(err, errlen,
                     "Changing an existing VIP's vip_id is not supported. If a new preferred IP "
                     "is needed, please recreate the VIP");
            return 400;
        }
        if (oa && !na)
            json_object_set_new(nv, "ip_address",
                                json_deep_copy(json_object_get(ov, "ip_address")));
    }
    return 0;
}

int avisim_vip_prepare(struct avisim_store *st, const struct avisim_obj *existing, json_t *body,
                       char *err, size_t errlen)
{
    json_t *vips = json_object_get(body, "vip");
    uint32_t *taken = NULL;
    size_t n_taken = 0;
    int rc = 0;

    if (existing) {
        rc = check_changes(json_object_get(existing->body, "vip"), vips, err, errlen);
        if (rc)
            return rc;
        avisim_vip_release(st, existing->body);
    }
    taken = calloc(json_array_size(vips) + 1, sizeof(*taken));
    if (!taken) {
        snprintf(err, errlen, "out of memory");
        rc = 500;
        goto out_restore;
    }
    size_t i;
    json_t *vip;
    json_array_foreach(vips, i, vip)
    {
        uint32_t a;
        if (avisim_ipv4_parse(vip_addr(vip), &a) == 0) {
            if (ip_reserve(st, a) == 0)
                taken[n_taken++] = a;
            continue;
        }
        if (vip_addr(vip) || !json_is_true(json_object_get(vip, "auto_allocate_ip")))
            continue;
        if (find_free(st, vip_network(st, vip), &a) || ip_reserve(st, a)) {
            snprintf(err, errlen, "No available free IPs");
            rc = 400;
            goto out_restore;
        }
        taken[n_taken++] = a;
        char text[16];
        avisim_ipv4_format(a, text);
        json_object_set_new(vip, "ip_address", json_pack("{s:s, s:s}", "addr", text, "type", "V4"));
    }
    free(taken);
    return 0;

out_restore:
    for (size_t k = 0; k < n_taken; k++)
        ip_release(st, taken[k]);
    free(taken);
    if (existing)
        reserve_body(st, existing->body);
    return rc;
}
