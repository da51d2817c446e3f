/* The op table: one record per op, indexed by the enum generated from op_list.h. */
#include "core_internal.h"

static const ssl_op_def_t *const op_table[] = {
#define X(e, n) [SSL_OP_##e] = &ssl_opdef_##n,
#include "op_list.h"
#undef X
};

_Static_assert(sizeof op_table / sizeof op_table[0] == SSL_OP_COUNT,
               "op table and op enum disagree");

const ssl_op_def_t *ssl__op_def(int op)
{
    if (op < 0 || op >= SSL_OP_COUNT)
        return NULL;
    return op_table[op];
}
