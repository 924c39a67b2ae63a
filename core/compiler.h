/* SPDX-License-Identifier: MIT */
#ifndef BLOCKD_CORE_COMPILER_H
#define BLOCKD_CORE_COMPILER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

#define DIV_ROUND_UP(n, d)	(((n) + (d) - 1) / (d))
#define ARRAY_SIZE(a)		(sizeof(a) / sizeof((a)[0]))
#define min_t(t, a, b)		((t)(a) < (t)(b) ? (t)(a) : (t)(b))
#define max_t(t, a, b)		((t)(a) > (t)(b) ? (t)(a) : (t)(b))

/* A broken invariant: continuing would corrupt data, so stop here. */
#define BUG_ON(cond)							\
	do {								\
		if (unlikely(cond)) {					\
			fprintf(stderr, "blockd: BUG at %s:%d: %s\n",	\
				__FILE__, __LINE__, #cond);		\
			abort();					\
		}							\
	} while (0)

/*
 * Error pointers, as in the kernel's <linux/err.h>: the top 4095 values of
 * the address space are never valid objects, so a function returning a
 * pointer can return -errno in it.
 */
#define MAX_ERRNO	4095

/**
 * ERR_PTR - @error as a pointer
 * @error: -errno, down to -MAX_ERRNO
 *
 * Return: a pointer IS_ERR() recognises.
 */
static inline void *ERR_PTR(long error)
{
	return (void *)error;
}

/**
 * PTR_ERR - the error an ERR_PTR() holds
 * @ptr: a pointer for which IS_ERR() is true
 *
 * Return: the -errno.
 */
static inline long PTR_ERR(const void *ptr)
{
	return (long)ptr;
}

/**
 * IS_ERR - whether @ptr is an error, not an object
 * @ptr: the pointer
 *
 * Return: non-zero for an ERR_PTR().
 */
static inline int IS_ERR(const void *ptr)
{
	return unlikely((uintptr_t)ptr >= (uintptr_t)-MAX_ERRNO);
}

/**
 * IS_ERR_OR_NULL - whether @ptr is NULL or an error
 * @ptr: the pointer
 *
 * Return: non-zero for NULL or an ERR_PTR().
 */
static inline int IS_ERR_OR_NULL(const void *ptr)
{
	return !ptr || IS_ERR(ptr);
}

#endif
