// Typed wrappers for libcurl's variadic functions, which Swift cannot call directly.
#ifndef ARCHWAY_CCURL_SHIM_H
#define ARCHWAY_CCURL_SHIM_H

#include <curl/curl.h>

static inline CURLcode archway_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode archway_easy_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode archway_easy_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode archway_easy_setopt_slist(CURL *handle, CURLoption option, struct curl_slist *value) {
    return curl_easy_setopt(handle, option, value);
}

static inline CURLcode archway_easy_setopt_off(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}

typedef size_t (*archway_data_callback)(char *buffer, size_t size, size_t count, void *userdata);

static inline CURLcode archway_easy_setopt_data_callback(CURL *handle, CURLoption option, archway_data_callback value) {
    return curl_easy_setopt(handle, option, value);
}

typedef int (*archway_seek_callback)(void *userdata, curl_off_t offset, int origin);

static inline CURLcode archway_easy_setopt_seek_callback(CURL *handle, archway_seek_callback value) {
    return curl_easy_setopt(handle, CURLOPT_SEEKFUNCTION, value);
}

typedef int (*archway_prereq_callback)(void *userdata, char *primary_ip, char *local_ip, int primary_port, int local_port);

static inline CURLcode archway_easy_setopt_prereq_callback(CURL *handle, archway_prereq_callback value) {
    return curl_easy_setopt(handle, CURLOPT_PREREQFUNCTION, value);
}

static inline CURLcode archway_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLcode archway_easy_getinfo_pointer(CURL *handle, CURLINFO info, void **value) {
    return curl_easy_getinfo(handle, info, value);
}

static inline CURLMcode archway_multi_setopt_long(CURLM *handle, CURLMoption option, long value) {
    return curl_multi_setopt(handle, option, value);
}

/// The easy handle and result of a finished transfer from curl_multi_info_read (CURLMsg holds a union).
static inline int archway_multi_next_done(CURLM *multi, CURL **easy, CURLcode *result) {
    int remaining = 0;
    CURLMsg *message;
    while ((message = curl_multi_info_read(multi, &remaining)) != NULL) {
        if (message->msg == CURLMSG_DONE) {
            *easy = message->easy_handle;
            *result = message->data.result;
            return 1;
        }
    }
    return 0;
}

#endif
