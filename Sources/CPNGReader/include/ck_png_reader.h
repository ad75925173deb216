// PNG decoding through libpng's full API, with libpng's longjmp errors turned into return codes.
#ifndef CK_PNG_READER_H
#define CK_PNG_READER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Return codes. On anything but CK_PNG_OK the message buffer holds the reason.
enum {
    CK_PNG_OK = 0,
    CK_PNG_CANNOT_OPEN = 1,     ///< open(2) or fstat(2) failed; the message is strerror(errno)
    CK_PNG_NOT_REGULAR = 2,     ///< the path is a directory, FIFO, socket or device; the message names which
    CK_PNG_EMPTY = 3,           ///< the file has 0 bytes
    CK_PNG_NOT_PNG = 4,         ///< the first 8 bytes are not the PNG signature
    CK_PNG_DECODE_ERROR = 5,    ///< libpng reported an error (corrupt or truncated data); the message is libpng's
    CK_PNG_OUT_OF_MEMORY = 6,
    CK_PNG_BAD_ARGUMENT = 7,    ///< a buffer is too small for the image, or the reader was used out of order
};

typedef struct ck_png_reader ck_png_reader;   // opaque: one open file and its libpng state

/// The image as `ck_png_decode` delivers it: gray (1 channel) or RGB (3), alpha dropped, palette
/// expanded, gray below 8 bits expanded to 8, 16-bit samples in the host's byte order, no gamma change.
typedef struct {
    uint32_t width, height;
    uint32_t channels;          ///< 1 or 3
    uint32_t bit_depth;         ///< 8 or 16
    uint32_t file_bit_depth;    ///< as stored: 1, 2, 4, 8 or 16
    uint32_t file_color_type;   ///< PNG colour type as stored: 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA
    uint32_t interlaced;        ///< 1 for Adam7
    uint64_t row_bytes;         ///< width * channels * bit_depth / 8
    uint64_t file_bytes;        ///< size of the file
} ck_png_header;

/// Opens `path` (refusing anything but a non-empty regular file without blocking on a FIFO), checks the
/// signature and reads the chunks up to the image data. On CK_PNG_OK, `*reader` must be closed with
/// `ck_png_close`; on anything else it is NULL.
int ck_png_open(const char *path, ck_png_reader **reader, ck_png_header *header, char *message, size_t message_size);

/// Decodes the whole image (every Adam7 pass) into `pixels`: `height` rows of `row_bytes` bytes, top to
/// bottom. `pixels_size` must be at least height * row_bytes.
int ck_png_decode(ck_png_reader *reader, void *pixels, size_t pixels_size, char *message, size_t message_size);

/// Frees everything `ck_png_open` allocated and closes the file. NULL is allowed.
void ck_png_close(ck_png_reader *reader);

#ifdef __cplusplus
}
#endif

#endif
