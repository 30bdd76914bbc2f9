#ifndef WARDEN_LAUNCHER_H
#define WARDEN_LAUNCHER_H
#include <sys/types.h>

/* Runs the launcher on argv (warden-launch.c); returns only by exec, or exits 125. */
int launch(int argc, char **argv);

/* The spawner (spawner.c): serves spawn requests from the service until it goes away. */
int serve(pid_t service);

#endif
