// Thin C wrappers over OpenMPI for Swift (see include/ck_mpi.h). Large buffers are reduced in chunks of
// at most INT_MAX elements, MPI's count type.
#include "ck_mpi.h"
#include <mpi.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

int ck_mpi_launched(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") != NULL || getenv("PMIX_RANK") != NULL || getenv("PMI_RANK") != NULL;
}

int ck_mpi_init(int *rank, int *size) {
    int provided = 0;
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return rc;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    rc = MPI_Comm_rank(MPI_COMM_WORLD, rank);
    if (rc != MPI_SUCCESS) return rc;
    return MPI_Comm_size(MPI_COMM_WORLD, size);
}

static int allreduce(void *values, size_t n, MPI_Datatype type, size_t element, MPI_Op op) {
    char *p = (char *)values;
    while (n > 0) {
        int count = n > (size_t)INT_MAX ? INT_MAX : (int)n;
        int rc = MPI_Allreduce(MPI_IN_PLACE, p, count, type, op, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return rc;
        p += (size_t)count * element;
        n -= (size_t)count;
    }
    return MPI_SUCCESS;
}

int ck_mpi_allreduce_sum_float(float *values, size_t n) { return allreduce(values, n, MPI_FLOAT, sizeof(float), MPI_SUM); }
int ck_mpi_allreduce_sum_double(double *values, size_t n) { return allreduce(values, n, MPI_DOUBLE, sizeof(double), MPI_SUM); }
int ck_mpi_allreduce_max_double(double *values, size_t n) { return allreduce(values, n, MPI_DOUBLE, sizeof(double), MPI_MAX); }

int ck_mpi_broadcast_float(float *values, size_t n, int root) {
    char *p = (char *)values;
    while (n > 0) {
        int count = n > (size_t)INT_MAX ? INT_MAX : (int)n;
        int rc = MPI_Bcast(p, count, MPI_FLOAT, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return rc;
        p += (size_t)count * sizeof(float);
        n -= (size_t)count;
    }
    return MPI_SUCCESS;
}

int ck_mpi_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }
int ck_mpi_finalize(void) { return MPI_Finalize(); }
void ck_mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

void ck_mpi_error_string(int code, char *buffer, int capacity) {
    char text[MPI_MAX_ERROR_STRING];
    int length = 0;
    if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) { strncpy(text, "unknown MPI error", sizeof text); }
    strncpy(buffer, text, (size_t)capacity - 1);
    buffer[capacity - 1] = 0;
}
