// core/safetensors.h — loralab's own small safetensors reader and writer.
//
// Format (https://github.com/huggingface/safetensors): an 8-byte little-endian header length
// N, N bytes of JSON header {"name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]},
// ..., "__metadata__": {str: str}}, then the data buffer; offsets are relative to the start
// of the data buffer. The header is parsed with jansson.
//
// Reading: st_open maps the file (mmap, so a 1.5 GB gpt2-large file is never copied into
// memory as a whole) and validates the whole header up front: header length within the file,
// valid JSON object, every tensor with a known dtype, a shape of non-negative integers,
// data_offsets inside the data buffer, a byte size equal to prod(shape) * dtype size, and no
// two tensors overlapping. Errors name the file and the tensor. st_read_f32 converts F32, F16,
// BF16 and F64 to float32; integer and bool tensors can be listed but not read as floats.
//
// Writing: F32 only, with optional __metadata__; the header is padded with spaces to a
// multiple of 8 bytes, as the reference implementation does. A writer streams tensors one at
// a time (st_writer_*) so that a caller never needs every tensor on the host at once; the
// file is written under a temporary name and renamed into place when complete.
//
// Assumes a little-endian host (x86-64, aarch64), as the format is little-endian.
#ifndef LORALAB_SAFETENSORS_H
#define LORALAB_SAFETENSORS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

enum { ST_MAX_DIMS = 8 };

// Every dtype of the reference implementation is recognised (so sizes can be validated);
// only the float ones can be read with st_read_f32.
typedef enum { ST_F64, ST_F32, ST_F16, ST_BF16, ST_F8_E4M3, ST_F8_E5M2, ST_I64, ST_I32, ST_I16,
               ST_I8, ST_U64, ST_U32, ST_U16, ST_U8, ST_BOOL, ST_NUM_DTYPES } StDtype;
extern const char *const ST_DTYPE_NAMES[ST_NUM_DTYPES];   // "F64", "F32", ...

// ----------------------------------------------------------------------------
// reading

typedef struct SafeTensors SafeTensors;

// Opens and validates path. Returns NULL with err_set() ("<path>: tensor 'x': ...") on any
// error. The caller frees with st_close.
SafeTensors *st_open(const char *path);
void st_close(SafeTensors *st);

const char *st_path(const SafeTensors *st);
int st_count(const SafeTensors *st);                      // tensors, in header order
int st_find(const SafeTensors *st, const char *name);     // index, or -1 if absent
const char *st_name(const SafeTensors *st, int index);
StDtype st_dtype(const SafeTensors *st, int index);
int st_ndim(const SafeTensors *st, int index);
const int64_t *st_shape(const SafeTensors *st, int index); // st_ndim entries
size_t st_numel(const SafeTensors *st, int index);
// Writes "[d0, d1, ...]" for tensor index into buf (for error messages); returns buf.
char *st_shape_str(const SafeTensors *st, int index, char *buf, size_t cap);

// Converts tensor index to float32 into out, which holds numel floats; numel must equal
// st_numel. Returns 0, or -1 with err_set() for a non-float dtype or a numel mismatch.
int st_read_f32(const SafeTensors *st, int index, float *out, size_t numel);

// Index of the first NaN or infinite element of tensor index (F64, F32, F16, BF16), or -1
// when every element is finite or the dtype is not a float one. Reads the file in place.
int64_t st_find_nonfinite(const SafeTensors *st, int index);

// __metadata__ value for key, or NULL (owned by st).
const char *st_metadata(const SafeTensors *st, const char *key);

// ----------------------------------------------------------------------------
// writing (F32)

typedef struct {
    const char *name;
    int ndim;
    const int *shape;     // ndim entries
} StTensorInfo;

typedef struct StWriter StWriter;

// Creates "<path>.tmp" and writes the header for n tensors, in the given order (which is also
// the order of the data). meta: NULL, or a NULL-terminated list of key, value strings.
// Returns NULL with err_set() on I/O errors or duplicate names.
StWriter *st_writer_open(const char *path, const StTensorInfo *tensors, int n,
                         const char *const *meta);
// Appends the data of the next tensor (numel floats; must match its shape, else LAB_ASSERT).
int st_writer_put(StWriter *w, const float *data, size_t numel);
// Checks that every tensor was written, closes and renames the file into place; on any
// earlier error removes the temporary file. Frees w. Returns 0 or -1 with err_set().
int st_writer_close(StWriter *w);

// Writes n tensors at once: data[i] holds tensor i.
int st_write(const char *path, const StTensorInfo *tensors, const float *const *data, int n,
             const char *const *meta);

// ----------------------------------------------------------------------------
// half-precision conversions (exact; used by the reader and its tests)

float st_f16_to_f32(uint16_t h);
float st_bf16_to_f32(uint16_t h);

// "an object", "a string", ...: names a JSON value's type in messages (also config.json's).
const char *st_json_type_name(const json_t *v);

#endif
