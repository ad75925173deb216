// The few MPI calls ConsistencyKit makes, as plain C functions: OpenMPI's handles (MPI_COMM_WORLD,
// MPI_FLOAT, ...) are macros over its internals that Swift cannot import. Every function returns 0 on
// success or an MPI error code, whose text ck_mpi_error_string gives; errors never abort the process.
#ifndef CK_MPI_H
#define CK_MPI_H
#include <stddef.h>

/// 1 if this process was started by mpirun/mpiexec (OpenMPI's or PMIx's environment is set), else 0.
int ck_mpi_launched(void);
/// MPI_Init_thread (funneled) with errors returned instead of aborting; rank and size of MPI_COMM_WORLD.
int ck_mpi_init(int *rank, int *size);
/// In-place sum over all ranks of n floats / doubles.
int ck_mpi_allreduce_sum_float(float *values, size_t n);
int ck_mpi_allreduce_sum_double(double *values, size_t n);
/// In-place maximum over all ranks.
int ck_mpi_allreduce_max_double(double *values, size_t n);
/// Root's n floats to every rank.
int ck_mpi_broadcast_float(float *values, size_t n, int root);
int ck_mpi_barrier(void);
int ck_mpi_finalize(void);
/// Ends every rank of the job with `code` (after a clear error on one of them).
void ck_mpi_abort(int code);
/// The text of an MPI error code, into buffer (at most capacity bytes, NUL-terminated).
void ck_mpi_error_string(int code, char *buffer, int capacity);

#endif
