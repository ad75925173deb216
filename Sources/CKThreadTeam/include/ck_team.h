#ifndef CK_TEAM_H
#define CK_TEAM_H

/// A job item: `index` runs in 0..<count, each exactly once, on one of the team's threads.
typedef void (*ck_team_item)(void *context, long index);

/// Runs item(context, i) for every i in 0..<count on the calling thread and up to `threads - 1` persistent
/// workers, and returns when all have run. The items run one after the other on the calling thread when one
/// thread is asked for, there is one item, it is called from inside an item, or another caller owns the team.
void ck_team_run(long count, int threads, ck_team_item item, void *context);

/// How long (microseconds) an idle worker keeps polling for the next job before it sleeps.
void ck_team_set_spin_microseconds(long microseconds);

#endif
