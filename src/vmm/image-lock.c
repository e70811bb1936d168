/* Disk image locks and their hand-over in a migration: see image-lock.h. */
#include "vmm/image-lock.h"

#include <errno.h>
#include <fcntl.h>

int image_lock_take(struct image_lock *l, struct err **e)
{
	struct flock fl = {.l_type = l->exclusive ? F_WRLCK : F_RDLCK, .l_whence = SEEK_SET};

	if (l->held)
		return 0;
	if (fcntl(l->fd, F_OFD_SETLK, &fl) == 0) {
		l->held = true;
		return 0;
	}
	if (errno == EAGAIN || errno == EACCES)
		return err_setx(e, EBUSY,
				"disk '%s': in use: another disk or process holds %s lock on it "
				"(lock=off shares it anyway)",
				l->path, l->exclusive ? "a" : "a write");
	return err_set(e, errno, "disk '%s': lock", l->path);
}

void image_lock_release(struct image_lock *l)
{
	struct flock fl = {.l_type = F_UNLCK, .l_whence = SEEK_SET};

	if (l->held && fcntl(l->fd, F_OFD_SETLK, &fl) == 0)
		l->held = false;
}

void image_locks_add(struct image_lock **list, struct image_lock *l)
{
	l->next = *list;
	*list = l;
}

void image_locks_remove(struct image_lock **list, struct image_lock *l)
{
	for (struct image_lock **p = list; *p; p = &(*p)->next) {
		if (*p == l) {
			*p = l->next;
			return;
		}
	}
}

int image_locks_take(struct image_lock *list, struct err **e)
{
	for (struct image_lock *l = list; l; l = l->next) {
		if (l->held)
			continue;
		if (image_lock_take(l, e) < 0) {
			image_locks_release(list);
			return -err_code(*e);
		}
	}
	return 0;
}

void image_locks_release(struct image_lock *list)
{
	for (struct image_lock *l = list; l; l = l->next)
		image_lock_release(l);
}
