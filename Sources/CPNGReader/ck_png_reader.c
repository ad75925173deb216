// PNG decoding through libpng's full API. libpng reports errors by longjmp, which Swift cannot catch;
// every libpng call here sits under a setjmp in this file, and callers get a code and a message.
#include "ck_png_reader.h"

#include <errno.h>
#include <fcntl.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct ck_png_reader {
    FILE *file;
    png_structp png;
    png_infop info;
    png_bytep *rows;
    uint64_t bytes_read;        // including the 8 signature bytes
    uint64_t file_bytes;
    int decoded;
    char message[256];
};

static void put(char *message, size_t size, const char *text) {
    if (message && size > 0) snprintf(message, size, "%s", text);
}

// MARK: - libpng callbacks

static void on_error(png_structp png, png_const_charp text) {
    ck_png_reader *r = (ck_png_reader *)png_get_error_ptr(png);
    snprintf(r->message, sizeof r->message, "%s", text ? text : "libpng gave no reason");
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp text) {
    (void)png; (void)text;      // warnings (unknown chunks, bad ancillary CRCs) do not stop a read
}

static void on_read(png_structp png, png_bytep out, size_t length) {
    ck_png_reader *r = (ck_png_reader *)png_get_io_ptr(png);
    size_t n = fread(out, 1, length, r->file);
    r->bytes_read += n;
    if (n != length) {
        char text[160];
        if (ferror(r->file))
            snprintf(text, sizeof text, "read failed after %llu bytes (%s)",
                     (unsigned long long)r->bytes_read, strerror(errno));
        else
            snprintf(text, sizeof text, "the file ends after %llu bytes, in the middle of its data: it is truncated",
                     (unsigned long long)r->bytes_read);
        png_error(png, text);
    }
}

// MARK: - Opening

static const char *kind_of(mode_t mode) {
    if (S_ISDIR(mode)) return "is a directory, not a file";
    if (S_ISFIFO(mode)) return "is a FIFO (named pipe), not a file";
    if (S_ISSOCK(mode)) return "is a socket, not a file";
    if (S_ISCHR(mode)) return "is a character device, not a file";
    if (S_ISBLK(mode)) return "is a block device, not a file";
    return "is not a regular file";
}

void ck_png_close(ck_png_reader *r) {
    if (!r) return;
    if (r->png) png_destroy_read_struct(&r->png, r->info ? &r->info : NULL, NULL);
    free(r->rows);
    if (r->file) fclose(r->file);
    free(r);
}

int ck_png_open(const char *path, ck_png_reader **reader, ck_png_header *header, char *message, size_t message_size) {
    if (!reader || !header || !path) { put(message, message_size, "bad argument"); return CK_PNG_BAD_ARGUMENT; }
    *reader = NULL;
    memset(header, 0, sizeof *header);

    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever.
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) { put(message, message_size, strerror(errno)); return CK_PNG_CANNOT_OPEN; }
    struct stat st;
    if (fstat(fd, &st) != 0) { put(message, message_size, strerror(errno)); close(fd); return CK_PNG_CANNOT_OPEN; }
    if (!S_ISREG(st.st_mode)) { put(message, message_size, kind_of(st.st_mode)); close(fd); return CK_PNG_NOT_REGULAR; }
    if (st.st_size == 0) { put(message, message_size, "is empty (0 bytes)"); close(fd); return CK_PNG_EMPTY; }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);

    ck_png_reader *r = calloc(1, sizeof *r);
    if (!r) { close(fd); put(message, message_size, "out of memory"); return CK_PNG_OUT_OF_MEMORY; }
    r->file_bytes = (uint64_t)st.st_size;
    r->file = fdopen(fd, "rb");
    if (!r->file) { put(message, message_size, strerror(errno)); close(fd); free(r); return CK_PNG_CANNOT_OPEN; }

    png_byte signature[8];
    size_t got = fread(signature, 1, 8, r->file);
    r->bytes_read = got;
    if (got < 8 || png_sig_cmp(signature, 0, 8) != 0) {
        char text[120];
        if (got < 8) snprintf(text, sizeof text, "only %zu bytes, too short to be a PNG file", got);
        else snprintf(text, sizeof text, "not a PNG file (its first 8 bytes are not the PNG signature)");
        put(message, message_size, text);
        ck_png_close(r);
        return CK_PNG_NOT_PNG;
    }

    r->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, r, on_error, on_warning);
    if (!r->png) { ck_png_close(r); put(message, message_size, "out of memory"); return CK_PNG_OUT_OF_MEMORY; }
    r->info = png_create_info_struct(r->png);
    if (!r->info) { ck_png_close(r); put(message, message_size, "out of memory"); return CK_PNG_OUT_OF_MEMORY; }
    if (setjmp(png_jmpbuf(r->png))) {
        put(message, message_size, r->message);
        ck_png_close(r);
        return CK_PNG_DECODE_ERROR;
    }
    png_set_read_fn(r->png, r, on_read);
    png_set_sig_bytes(r->png, 8);
    png_read_info(r->png, r->info);

    png_uint_32 width = 0, height = 0;
    int depth = 0, color = 0, interlace = 0;
    png_get_IHDR(r->png, r->info, &width, &height, &depth, &color, &interlace, NULL, NULL);
    // Values as stored: no gamma, no background, no alpha. tRNS is ignored (it would become alpha).
    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(r->png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(r->png);
    // Expanding a low-bit palette with tRNS gives alpha even without png_set_tRNS_to_alpha: strip that too.
    if ((color & PNG_COLOR_MASK_ALPHA) || png_get_valid(r->png, r->info, PNG_INFO_tRNS)) png_set_strip_alpha(r->png);
    if (depth == 16) {
        const uint16_t one = 1;
        if (*(const uint8_t *)&one == 1) png_set_swap(r->png);     // PNG is big-endian; the host is not
    }
    if (interlace != PNG_INTERLACE_NONE) (void)png_set_interlace_handling(r->png);
    png_read_update_info(r->png, r->info);

    header->width = width;
    header->height = height;
    header->channels = png_get_channels(r->png, r->info);
    header->bit_depth = png_get_bit_depth(r->png, r->info);
    header->file_bit_depth = (uint32_t)depth;
    header->file_color_type = (uint32_t)color;
    header->interlaced = interlace != PNG_INTERLACE_NONE;
    header->row_bytes = (uint64_t)png_get_rowbytes(r->png, r->info);
    header->file_bytes = r->file_bytes;
    uint64_t expected = (uint64_t)width * header->channels * (header->bit_depth / 8);
    if ((header->channels != 1 && header->channels != 3) || (header->bit_depth != 8 && header->bit_depth != 16)
        || header->row_bytes != expected) {
        char text[160];
        snprintf(text, sizeof text, "unexpected layout after expansion (%u channels of %u bits, %llu bytes per row)",
                 header->channels, header->bit_depth, (unsigned long long)header->row_bytes);
        put(message, message_size, text);
        ck_png_close(r);
        return CK_PNG_DECODE_ERROR;
    }
    *reader = r;
    return CK_PNG_OK;
}

// MARK: - Decoding

int ck_png_decode(ck_png_reader *r, void *pixels, size_t pixels_size, char *message, size_t message_size) {
    if (!r || !pixels || r->decoded || r->rows) { put(message, message_size, "reader used out of order"); return CK_PNG_BAD_ARGUMENT; }
    png_uint_32 height = png_get_image_height(r->png, r->info);
    size_t row_bytes = png_get_rowbytes(r->png, r->info);
    if (height == 0 || row_bytes == 0 || (uint64_t)pixels_size / row_bytes < height) {
        put(message, message_size, "pixel buffer too small for the image");
        return CK_PNG_BAD_ARGUMENT;
    }
    r->rows = malloc((size_t)height * sizeof(png_bytep));
    if (!r->rows) { put(message, message_size, "out of memory"); return CK_PNG_OUT_OF_MEMORY; }
    for (png_uint_32 y = 0; y < height; y++) r->rows[y] = (png_bytep)pixels + (size_t)y * row_bytes;
    if (setjmp(png_jmpbuf(r->png))) {
        put(message, message_size, r->message);
        return CK_PNG_DECODE_ERROR;
    }
    png_read_image(r->png, r->rows);
    r->decoded = 1;
    return CK_PNG_OK;
}
