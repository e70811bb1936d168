/*
 * A minimal AML (ACPI Machine Language) writer: just what Casulo's DSDT
 * needs to describe its devices (Scope, Device, Name, Package, Buffer and
 * resource templates).  Encodings follow the ACPI 6.x spec, chapter 20.
 */
#ifndef CASULO_VMM_ARCH_X86_AML_H
#define CASULO_VMM_ARCH_X86_AML_H

#include <stddef.h>
#include <stdint.h>

#define AML_MAX_DEPTH 8

struct aml {
	uint8_t *buf;
	size_t len;
	size_t cap;
	size_t open[AML_MAX_DEPTH]; /* start of each open PkgLength body */
	unsigned depth;
	int failed; /* sticky: out of memory or unbalanced nesting */
};

void aml_init(struct aml *a);
void aml_free(struct aml *a);
void aml_bytes(struct aml *a, const void *p, size_t n);
void aml_byte(struct aml *a, uint8_t b);

/* NameString: "\\_SB_", "COM1", "_HID"; segments of 4 chars separated by '.' */
void aml_name(struct aml *a, const char *path);
void aml_integer(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
/* EISA ID like "PNP0501" as its compressed 32-bit integer. */
void aml_eisaid(struct aml *a, const char *id);

/* Open constructs: close each with aml_end(). */
void aml_scope(struct aml *a, const char *path);
void aml_device(struct aml *a, const char *name);
void aml_package(struct aml *a, uint8_t nelems);
/* Name(name, ...): follow with one data object. */
void aml_name_decl(struct aml *a, const char *name);
void aml_end(struct aml *a);

/* Method(name, nargs, NotSerialized) { ... }: close with aml_end(). */
void aml_method(struct aml *a, const char *name, uint8_t nargs);
/* Notify(object, value) */
void aml_notify(struct aml *a, const char *object, uint8_t value);

/* Name(_CRS, ResourceTemplate() { ... }): open with aml_crs_begin(),
 * add descriptors, close with aml_crs_end(). */
void aml_crs_begin(struct aml *a);
void aml_crs_io(struct aml *a, uint16_t base, uint8_t len);
void aml_crs_irq(struct aml *a, uint8_t irq);
void aml_crs_mem32(struct aml *a, uint32_t base, uint32_t len);
/* Extended interrupt: level/edge, active high, exclusive, any GSI. */
void aml_crs_ext_irq(struct aml *a, uint32_t gsi, int edge);
void aml_crs_end(struct aml *a);

#endif
